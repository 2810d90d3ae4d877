// The React hooks in a DOM (jsdom + @testing-library/react), against the real server binary:
// useChat receives and sends, survives a server restart and catches up with room:sync;
// useNotifications gets the backlog, live notifications and job progress and marks read;
// usePresence follows the member count; useSocket follows the connection; useChat's edit,
// remove and react change its messages; useRooms keeps unread counts fresh.
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>", { url: "http://localhost/" });
for (const key of ["window", "document", "HTMLElement", "Node", "Element", "Event", "MutationObserver", "getComputedStyle"]) {
  Object.defineProperty(globalThis, key, { value: key === "window" ? dom.window : dom.window[key], configurable: true, writable: true });
}
if (!("navigator" in globalThis)) globalThis.navigator = dom.window.navigator;
globalThis.IS_REACT_ACT_ENVIRONMENT = true;

const { test, before, after } = await import("node:test");
const assert = (await import("node:assert/strict")).default;
const React = await import("react");
const { render, act, cleanup } = await import("@testing-library/react");
const { RealtimeClient } = await import("../dist/index.js");
const { RealtimeProvider, useChat, useNotifications, usePresence, useRooms, useSocket } = await import("../dist/react.js");
const { startServer, token, until } = await import("./fixture.mjs");

const h = React.createElement;
let srv;
const clients = [];
const newClient = (user) => {
  const c = new RealtimeClient({
    url: srv.url,
    getToken: () => token(user),
    socket: { transports: ["websocket"], reconnectionDelay: 200, reconnectionDelayMax: 500 },
  });
  clients.push(c);
  return c;
};
/** Renders `hook` under a provider; `state.current` is its latest value. */
function renderHook(client, hook) {
  const state = { current: undefined, renders: 0 };
  function Probe() {
    state.current = hook();
    state.renders += 1;
    return null;
  }
  const view = render(h(RealtimeProvider, { client }, h(Probe)));
  return { state, view };
}
const eventually = (pred, ms, what) => until(async () => {
  let ok = false;
  await act(async () => { ok = pred(); });
  return ok;
}, ms, what);

before(async () => {
  srv = await startServer();
  for (const u of ["alice", "bob", "carol"]) await srv.user(u);
  await srv.room("lobby");
  await srv.room("hooked");
});
after(async () => {
  cleanup();
  for (const c of clients) c.close();
  await srv.stop();
});

test("useChat: history, live messages and sends; after a server restart it catches up (room:sync) without duplicates", async () => {
  const early = await srv.post("carol", "lobby", "before alice came");
  const alice = newClient("alice");
  const { state } = renderHook(alice, () => ({ chat: useChat("lobby"), socket: useSocket() }));
  await eventually(() => state.current.chat.joined, 5000, "joined");
  await eventually(() => state.current.chat.messages.some((m) => m.id === early), 3000, "the history");
  // another user's message arrives live
  const live = await srv.post("bob", "lobby", "hi alice");
  await eventually(() => state.current.chat.messages.some((m) => m.id === live), 3000, "a live message");
  // the hook's send
  let sent;
  await act(async () => { sent = await state.current.chat.send("hello from the hook"); });
  await eventually(() => state.current.chat.messages.some((m) => m.id === sent.messageId), 3000, "own message");
  assert.equal(state.current.socket.status, "connected");
  // the server goes away; messages are posted while the client reconnects
  await act(async () => { await srv.down(); });
  await eventually(() => state.current.socket.status === "disconnected", 5000, "status disconnected");
  await srv.up();
  const missed = [];
  for (let i = 0; i < 60; i++) missed.push(await srv.post(i % 2 ? "bob" : "carol", "lobby", `while away ${i}`));
  await eventually(() => state.current.socket.status === "connected", 10000, "status connected again");
  await eventually(() => missed.every((id) => state.current.chat.messages.some((m) => m.id === id)), 10000, "caught up");
  const ids = state.current.chat.messages.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, "no duplicates");
  assert.deepEqual(state.current.chat.messages.slice(-60).map((m) => m.text), missed.map((_, i) => `while away ${i}`), "in order");
  assert.equal(state.current.chat.error, undefined);
});

test("useNotifications: the backlog, live notifications and job progress; markRead", async () => {
  // one stored before the hook mounts (the backlog), one after (live)
  await srv.internal("PUT", "/carts/bob/items/sku-1");
  await srv.internal("PUT", "/carts/bob/items/sku-2");
  assert.equal((await (await srv.internal("POST", "/notify/stock", { productId: "sku-1", stock: 0 })).json()).notified, 1);
  const bob = newClient("bob");
  const { state } = renderHook(bob, () => useNotifications());
  await eventually(() => state.current.items.length === 1 && state.current.unread === 1, 5000, "the backlog");
  assert.equal(state.current.items[0].productId, "sku-1");
  await srv.internal("POST", "/notify/stock", { productId: "sku-2", stock: 0 });
  await eventually(() => state.current.items.length === 2 && state.current.unread === 2, 3000, "a live notification");
  assert.equal(state.current.items[0].productId, "sku-2", "newest first");
  await srv.internal("POST", "/notify/progress", { userId: "bob", jobId: "export", progress: 75, status: "processing" });
  await eventually(() => state.current.jobs.export?.progress === 75, 3000, "job progress");
  await act(async () => { await state.current.markRead([state.current.items[0].id]); });
  assert.equal(state.current.unread, 1);
  assert.equal(state.current.items[0].read, true);
  const stored = await (await fetch(`${srv.url}/api/notifications?unread=true`, { headers: { authorization: `Bearer ${token("bob")}` } })).json();
  assert.equal(stored.unread, 1, "read on the server too");
});

test("usePresence: the member count and who joined, from every socket's updates", async () => {
  const carol = newClient("carol");
  const { state } = renderHook(carol, () => usePresence("lobby"));
  await eventually(() => state.current.memberCount >= 1, 5000, "carol counted");
  const before = state.current.memberCount;
  const bob = newClient("bob");
  await bob.join("lobby");
  await eventually(() => state.current.present.includes("bob") && state.current.memberCount === before + 1, 3000, "bob seen");
  await bob.leave("lobby");
  await eventually(() => !state.current.present.includes("bob") && state.current.memberCount === before, 3000, "bob gone");
});

test("two components on one room share the join; unmounting one keeps the other", async () => {
  const alice = newClient("alice");
  const a = renderHook(alice, () => useChat("lobby"));
  const b = renderHook(alice, () => useChat("lobby"));
  await eventually(() => a.state.current.joined && b.state.current.joined, 5000, "both joined");
  a.view.unmount();
  const msg = await srv.post("carol", "lobby", "for the one left");
  await eventually(() => b.state.current.messages.some((m) => m.id === msg), 3000, "the remaining one still gets messages");
  b.view.unmount();
});

test("useChat edits, removes and reacts; useRooms counts unread and follows reads", async () => {
  const carol = newClient("carol");
  const { state } = renderHook(carol, () => ({ chat: useChat("hooked"), rooms: useRooms(100) }));
  await eventually(() => state.current.chat.joined, 5000, "joined");
  let sent;
  await act(async () => { sent = await state.current.chat.send("tpyo"); });
  await act(async () => { await state.current.chat.edit(sent.messageId, "typo"); });
  await act(async () => { await state.current.chat.react(sent.messageId, "✅", true); });
  await eventually(() => {
    const m = state.current.chat.messages.find((x) => x.id === sent.messageId);
    return m?.text === "typo" && m.reactions?.[0]?.emoji === "✅";
  }, 3000, "edited and reacted");
  await act(async () => { await state.current.chat.markRead(sent.messageId); });
  // others write: unread rises without asking
  const b1 = await srv.post("bob", "hooked", "one");
  await srv.post("bob", "hooked", "two");
  await eventually(() => state.current.rooms.rooms.find((r) => r.id === "hooked")?.unread === 2, 3000, "two unread");
  await act(async () => { await state.current.chat.markRead(b1); });
  await eventually(() => state.current.rooms.rooms.find((r) => r.id === "hooked")?.unread === 1, 3000, "one unread after a read");
  await act(async () => { await state.current.chat.remove(sent.messageId); });
  await eventually(() => state.current.chat.messages.find((x) => x.id === sent.messageId)?.deletedAt > 0, 3000, "blanked in place");
  assert.equal(state.current.chat.messages.find((x) => x.id === sent.messageId).text, "");
  assert.equal(state.current.rooms.error, undefined);
});

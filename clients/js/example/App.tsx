// A sample app written against the package as a user installs it: the test command type-checks
// it (`tsc -p example --noEmit`), so the published types must carry a real app. The lines
// marked @ts-expect-error must stay errors: they prove the events are typed, not `any`.
import { useState } from "react";
import { io, type Socket } from "socket.io-client";
import {
  RealtimeClient,
  type ChatClientToServerEvents,
  type ChatServerToClientEvents,
  type ChatMessage,
  type AdminClientToServerEvents,
  type AdminServerToClientEvents,
} from "@realtime-server/client";
import { RealtimeProvider, useChat, useNotifications, usePresence, useRooms, useSocket } from "@realtime-server/client/react";

const client = new RealtimeClient({
  url: "https://chat.example.com",
  getToken: async () => (await fetch("/my-backend/realtime-token")).text(),
});

function Room({ roomId }: { roomId: string }) {
  const { messages, send, edit, remove, react, typing, startTyping, stopTyping, markRead, receipts, memberCount, error } = useChat(roomId);
  const { present } = usePresence(roomId);
  const [draft, setDraft] = useState("");
  const last: ChatMessage | undefined = messages.at(-1);
  return (
    <section>
      <h2>
        {roomId} ({memberCount} here, {present.length} seen)
      </h2>
      {error && <p role="alert">{error.code}: {error.message}</p>}
      <ul>
        {messages.map((m) => (
          <li key={m.id} onClick={() => void markRead(m.id)}>
            <b>{m.sender.name}</b> {m.deletedAt ? <i>deleted</i> : m.text} {m.editedAt ? "(edited)" : ""}
            {m.replyTo ? `(re: ${m.replyTo.text})` : ""}
            {Object.entries(receipts).filter(([, id]) => id === m.id).map(([u]) => ` ✓${u}`)}
            {(m.reactions ?? []).map((r) => (
              <button key={r.emoji} onClick={() => void react(m.id, r.emoji, !r.userIds.includes("me"))}>
                {r.emoji} {r.count}
              </button>
            ))}
            <button onClick={() => void edit(m.id, `${m.text}!`)}>edit</button>
            <button onClick={() => void remove(m.id)}>delete</button>
          </li>
        ))}
      </ul>
      {typing.length > 0 && <p>{typing.join(", ")} typing…</p>}
      <input
        value={draft}
        onChange={(e) => {
          setDraft(e.target.value);
          startTyping();
        }}
        onBlur={stopTyping}
      />
      <button
        onClick={async () => {
          const { messageId } = await send(draft, last ? { replyToId: last.id } : undefined);
          console.log("stored as", messageId);
          setDraft("");
        }}
      >
        Send
      </button>
    </section>
  );
}

function Rooms({ open }: { open: (id: string) => void }) {
  const { rooms, refresh, error } = useRooms();
  return (
    <nav>
      {error && <p role="alert">{error.code}</p>}
      <button onClick={() => void refresh()}>refresh</button>
      {rooms.map((r) => (
        <a key={r.id} onClick={() => open(r.id)}>
          #{r.name} {r.unread > 0 ? `(${r.unread})` : ""} {r.lastMessage ? `${r.lastMessage.sender.name}: ${r.lastMessage.text}` : ""}
        </a>
      ))}
    </nav>
  );
}

function Bell() {
  const { items, unread, markRead, jobs } = useNotifications();
  return (
    <aside>
      <button onClick={() => void markRead(items.filter((n) => !n.read && n.id).map((n) => n.id as string))}>{unread} unread</button>
      {items.map((n) => (
        <p key={n.id}>
          {n.type === "PRICE_DROP" ? `${n.productId} down ${n.changePercent}%` : `${n.productId}: ${n.stock} left`}
        </p>
      ))}
      {Object.values(jobs).map((j) => (
        <progress key={j.jobId} value={j.progress} max={100} />
      ))}
    </aside>
  );
}

function Status() {
  const { status, client: c } = useSocket();
  return <footer onClick={() => c.close()}>{status}</footer>;
}

export function App() {
  const [roomId, setRoomId] = useState("lobby");
  return (
    <RealtimeProvider client={client}>
      <Rooms open={setRoomId} />
      <Room roomId={roomId} />
      <Bell />
      <Status />
    </RealtimeProvider>
  );
}

// The raw typed sockets, for what the client does not wrap.
export async function rawSockets(token: string) {
  const chat: Socket<ChatServerToClientEvents, ChatClientToServerEvents> = io("/", { auth: { token } });
  const joined = await chat.emitWithAck("room:join", { roomId: "lobby" });
  if (joined.success) console.log(joined.memberCount);
  else console.log(joined.code);
  chat.on("chat:message", (m) => console.log(m.sender.id, m.text, m.readBy.length));
  chat.on("chat:direct", (dm, ack) => {
    ack?.();
    console.log(dm.fromUserId, dm.message);
  });
  const admin: Socket<AdminServerToClientEvents, AdminClientToServerEvents> = io("/admin", { auth: { token } });
  const stats = await admin.emitWithAck("admin:stats", null);
  if (stats.success) console.log(stats.connections, stats.nodes.length);

  // @ts-expect-error room:join takes a room id, not a number
  chat.emit("room:join", 42, () => {});
  // @ts-expect-error chat:send needs text
  await chat.emitWithAck("chat:send", { roomId: "lobby" });
  // @ts-expect-error no such event on the chat namespace
  chat.emit("admin:stats", {}, () => {});
  // @ts-expect-error a message has no body field
  chat.on("chat:message", (m) => console.log(m.body));
  // @ts-expect-error the ack's failure has a code, not a status
  if (!joined.success) console.log(joined.status);
}

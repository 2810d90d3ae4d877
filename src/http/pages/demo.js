// The demo chat (serve --demo): sign in as a demo user (POST /demo/token), the room list with
// unread badges (rooms:list), each room's history, send and reply, edit and delete one's own
// messages, reactions, typing, read receipts, DMs, and notifications and announcements as
// toasts, with the stock socket.io-client. Text from others is set with textContent.
"use strict";
(function () {
  const KEY = "realtime-demo";
  const QUICK = ["👍", "❤️", "😂"];
  const KEEP = 200; // messages kept per room
  const $ = (id) => document.getElementById(id);
  let chat = null;
  let notes = null;
  let me = null;
  let current = "lobby";
  let replyTo = null;
  let editing = null; // id of the own message being edited
  let typingTimer = null;
  const readTimers = new Map(); // roomId → the pending chat:read
  /** roomId → {name, unread, messages: [message], readers: Map(userId → id), typers: Set} */
  const rooms = new Map();
  const shown = new Map(); // id → <li> of the current room
  const seenDms = new Set();
  const seenNotes = new Set();

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function button(text, testid, label) {
    const b = el("button", text, "link");
    b.type = "button";
    if (testid) b.dataset.testid = testid;
    if (label) b.setAttribute("aria-label", label);
    return b;
  }
  function setStatus(t) { $("status").textContent = t; }
  function toast(text) {
    const t = el("div", text, "toast");
    t.dataset.testid = "toast";
    t.setAttribute("role", "status");
    $("toasts").append(t);
    setTimeout(() => t.remove(), 8000);
  }
  function clientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  }
  function room(id) {
    if (!rooms.has(id)) rooms.set(id, { name: id, unread: 0, messages: [], readers: new Map(), typers: new Set() });
    return rooms.get(id);
  }
  async function ask(event, payload) {
    if (!chat) throw new Error("signed out");
    return chat.timeout(5000).emitWithAck(event, payload);
  }

  function showSignIn(error) {
    $("chat").hidden = true;
    $("signin").hidden = false;
    $("signout").hidden = true;
    $("signin-error").textContent = error || "";
    $("signin-error").hidden = !error;
  }

  // --- the room list ---

  function renderRooms() {
    const list = $("room-list");
    list.textContent = "";
    for (const [id, r] of rooms) {
      const li = el("li");
      const b = el("button");
      b.type = "button";
      b.dataset.testid = `room-${id}`;
      if (id === current) b.setAttribute("aria-current", "true");
      const badge = el("span", r.unread > 0 ? (r.unread >= 999 ? "999+" : r.unread) : "", "badge");
      badge.dataset.testid = `unread-${id}`;
      badge.setAttribute("aria-label", `${r.unread} unread`);
      b.append(el("span", `#${r.name}`), badge);
      b.addEventListener("click", () => switchTo(id));
      li.append(b);
      list.append(li);
    }
  }

  function switchTo(id) {
    if (id === current) return;
    stopTyping();
    current = id;
    cancelEdit();
    replyTo = null;
    $("replying").hidden = true;
    renderRoom();
    renderRooms();
    markRead();
  }

  // --- the current room ---

  function renderRoom() {
    const r = room(current);
    $("room-name").textContent = `#${r.name}`;
    $("members").textContent = r.memberCount !== undefined ? `· ${r.memberCount} online` : "";
    const list = $("message-list");
    list.textContent = "";
    shown.clear();
    for (const m of r.messages) list.append(render(m));
    list.scrollTop = list.scrollHeight;
    renderReceipts();
    renderTyping();
  }

  function renderReceipts() {
    for (const li of shown.values()) li.querySelector(".receipts").textContent = "";
    const by = new Map();
    for (const [user, id] of room(current).readers) {
      if (user === me || !shown.has(id)) continue;
      if (!by.has(id)) by.set(id, []);
      by.get(id).push(user);
    }
    for (const [id, users] of by) shown.get(id).querySelector(".receipts").textContent = ` · seen by ${users.join(", ")}`;
  }

  /** The <li> of a message (replaces the one shown for it). */
  function render(m) {
    const li = el("li");
    li.dataset.id = m.id;
    if (m.replyTo) li.append(el("div", `↪ ${m.replyTo.senderId}: ${m.replyTo.text || "(deleted)"}`, "quote"));
    const line = el("div");
    const who = m.sender.name || m.sender.id;
    line.append(el("span", who, "sender"), document.createTextNode(" "));
    if (m.deletedAt) line.append(el("span", "message deleted", "text deleted"));
    else line.append(el("span", m.text, "text"));
    if (m.editedAt && !m.deletedAt) line.append(document.createTextNode(" "), el("span", "(edited)", "edited"));
    li.append(line);
    const meta = el("div", new Date(m.timestamp).toLocaleTimeString(), "meta");
    if (!m.deletedAt) {
      const reply = button("Reply", "message-reply", `Reply to ${who}: ${m.text}`);
      reply.addEventListener("click", () => {
        cancelEdit();
        replyTo = { id: m.id, text: m.text };
        $("replying-to").textContent = `${who}: ${m.text}`;
        $("replying").hidden = false;
        $("message-input").focus();
      });
      meta.append(document.createTextNode(" "), reply);
      if (m.sender.id === me) {
        const edit = button("Edit", "message-edit", `Edit your message: ${m.text}`);
        edit.addEventListener("click", () => startEdit(m));
        const del = button("Delete", "message-delete", `Delete your message: ${m.text}`);
        del.addEventListener("click", () => remove(m.id));
        meta.append(edit, del);
      }
      const chips = el("span", undefined, "reactions");
      const emojis = new Set([...(m.reactions || []).map((x) => x.emoji), ...QUICK]);
      for (const emoji of emojis) {
        const r = (m.reactions || []).find((x) => x.emoji === emoji);
        const mine = !!r && r.userIds.includes(me);
        const chip = el("button", r ? `${emoji} ${r.count}` : emoji);
        chip.type = "button";
        chip.dataset.testid = "reaction";
        chip.dataset.emoji = emoji;
        chip.setAttribute("aria-pressed", String(mine));
        chip.setAttribute("aria-label", `${mine ? "Remove" : "React with"} ${emoji}${r ? ` (${r.count})` : ""}`);
        chip.addEventListener("click", () => react(m.id, emoji, !mine));
        chips.append(chip);
      }
      meta.append(chips);
    }
    meta.append(el("span", "", "receipts"));
    li.append(meta);
    const old = shown.get(m.id);
    shown.set(m.id, li);
    if (old) old.replaceWith(li);
    return li;
  }

  /** Keeps `m` in its room (new or a later state) and shows it when the room is open. */
  function keep(m) {
    const r = room(m.roomId);
    const i = r.messages.findIndex((x) => x.id === m.id);
    if (i >= 0) r.messages[i] = m;
    else {
      r.messages.push(m);
      r.messages.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      if (r.messages.length > KEEP) r.messages.shift();
    }
    if (m.roomId !== current) return;
    if (i >= 0) render(m);
    else {
      const list = $("message-list");
      list.append(render(m));
      list.scrollTop = list.scrollHeight;
    }
  }

  /** Applies `f` to a kept message (and shows it again). */
  function change(roomId, id, f) {
    const r = room(roomId);
    const m = r.messages.find((x) => x.id === id);
    if (m) keep(f(m));
  }

  /** Moves this user's marker in the open room to its newest message (shortly: a burst of
   * messages is one chat:read). Each room has its own timer, so leaving a room at once
   * still marks what was read there. */
  function markRead() {
    const roomId = current;
    const r = room(roomId);
    // what is on screen now, not what arrives after the user left the room
    const newest = r.messages.length ? r.messages[r.messages.length - 1].id : null;
    clearTimeout(readTimers.get(roomId));
    readTimers.set(roomId, setTimeout(() => {
      readTimers.delete(roomId);
      if (r.unread !== 0 && roomId === current) { r.unread = 0; renderRooms(); }
      if (newest && chat && chat.connected && r.readers.get(me) !== newest) {
        r.readers.set(me, newest);
        ask("chat:read", { roomId, lastReadMessageId: newest }).then((a) => {
          if (!a.success) { r.readers.delete(me); console.warn(`chat:read ${roomId}: ${a.code}`); }
        }, () => r.readers.delete(me));
      }
    }, 300));
  }

  function renderTyping() {
    const names = [...room(current).typers];
    $("typing").textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
  }

  function stopTyping() {
    if (typingTimer === null) return;
    clearTimeout(typingTimer);
    typingTimer = null;
    if (chat) chat.emit("chat:typing-stop", { roomId: current });
  }

  // --- edits, deletes, reactions ---

  function startEdit(m) {
    replyTo = null;
    $("replying").hidden = true;
    editing = m.id;
    $("editing").hidden = false;
    $("message-input").value = m.text;
    $("message-send").textContent = "Save";
    $("message-input").focus();
  }
  function cancelEdit() {
    if (editing === null) return;
    editing = null;
    $("editing").hidden = true;
    $("message-input").value = "";
    $("message-send").textContent = "Send";
  }
  async function remove(id) {
    try {
      const r = await ask("chat:delete", { messageId: id });
      if (!r.success) toast(`Not deleted: ${r.code}: ${r.error}`);
    } catch (_) { toast("Not deleted: no answer"); }
  }
  async function react(id, emoji, on) {
    try {
      const r = await ask("chat:react", { messageId: id, emoji, on });
      if (!r.success) toast(`Reaction refused: ${r.code}: ${r.error}`);
    } catch (_) { toast("Reaction not sent: no answer"); }
  }
  function withReaction(m, ev) {
    const list = (m.reactions || []).map((x) => ({ ...x, userIds: [...x.userIds] }));
    const i = list.findIndex((x) => x.emoji === ev.emoji);
    if (ev.on) {
      if (i < 0) list.push({ emoji: ev.emoji, count: 1, userIds: [ev.userId] });
      else if (!list[i].userIds.includes(ev.userId)) { list[i].count += 1; list[i].userIds.push(ev.userId); }
    } else if (i >= 0) {
      list[i].count -= 1;
      list[i].userIds = list[i].userIds.filter((u) => u !== ev.userId);
      if (list[i].count <= 0) list.splice(i, 1);
    }
    return { ...m, reactions: list };
  }

  function onNotification(n) {
    const key = n.id || JSON.stringify(n);
    if (seenNotes.has(key)) return;
    seenNotes.add(key);
    const text = n.message || (n.type === "PRICE_DROP"
      ? `${n.productId}: price ${n.oldPrice} → ${n.newPrice}`
      : `${n.productId}: stock ${n.stock}${n.isLowStock ? " (low)" : ""}`);
    toast(`Notification: ${text}`);
  }

  function stop() {
    for (const s of [chat, notes]) if (s) { s.removeAllListeners(); s.close(); }
    chat = notes = null;
  }

  /** The room list (rooms:list), then each room joined (its history arrives as room:history). */
  async function loadRooms() {
    let listed = [];
    try {
      const r = await ask("rooms:list", {});
      if (r.success) listed = r.rooms;
      else toast(`No room list: ${r.code}`);
    } catch (_) { toast("No answer to rooms:list"); }
    if (!listed.some((r) => r.id === "lobby")) listed.push({ id: "lobby", name: "Lobby", unread: 0 });
    for (const l of listed) {
      const r = room(l.id);
      r.name = l.name;
      r.unread = l.id === current ? 0 : l.unread;
    }
    if (!rooms.has(current)) current = listed[0].id;
    renderRooms();
    renderRoom();
    for (const l of listed) {
      try {
        const r = await ask("room:join", l.id);
        if (r.success) room(l.id).memberCount = r.memberCount;
        else toast(`Cannot join #${l.name}: ${r.code}`);
      } catch (_) { toast(`No answer to room:join ${l.id}`); }
    }
    renderRoom();
    markRead();
  }

  function connect(user, token) {
    stop();
    me = user;
    setStatus(`connecting as ${user}…`);
    chat = io("/", { auth: { token } });
    notes = io("/notifications", { auth: { token } });
    chat.on("connect", () => {
      sessionStorage.setItem(KEY, JSON.stringify({ user, token }));
      setStatus(`signed in as ${user}`);
      $("signin").hidden = true;
      $("chat").hidden = false;
      $("signout").hidden = false;
      void loadRooms();
    });
    chat.on("connect_error", (err) => {
      const code = err && err.data && err.data.code;
      stop();
      sessionStorage.removeItem(KEY);
      setStatus("signed out");
      showSignIn(code ? `${code}: ${err.message}` : `Cannot connect: ${err.message}`);
    });
    chat.on("disconnect", (reason) => {
      if (reason === "io server disconnect") {
        stop();
        sessionStorage.removeItem(KEY);
        setStatus("signed out");
        showSignIn("The server ended this session.");
      } else {
        setStatus("reconnecting…");
      }
    });
    chat.on("room:history", (h) => {
      for (const m of h.messages) keep(m);
      if (h.roomId === current) markRead();
    });
    chat.on("chat:message", (m) => {
      keep(m);
      if (m.roomId === current) markRead();
      else if (m.sender.id !== me) { room(m.roomId).unread += 1; renderRooms(); }
    });
    chat.on("chat:message-updated", (u) => change(u.roomId, u.id, (m) => ({ ...m, text: u.text, editedAt: u.editedAt })));
    chat.on("chat:message-deleted", (d) => {
      change(d.roomId, d.id, (m) => ({ ...m, text: "", deletedAt: d.deletedAt, reactions: [] }));
      for (const m of room(d.roomId).messages) {
        if (m.replyTo && m.replyTo.id === d.id) change(d.roomId, m.id, (x) => ({ ...x, replyTo: { ...x.replyTo, text: "" } }));
      }
      if (editing === d.id) cancelEdit();
    });
    chat.on("chat:reaction", (ev) => change(ev.roomId, ev.messageId, (m) => withReaction(m, ev)));
    chat.on("room:member-update", (u) => {
      room(u.roomId).memberCount = u.memberCount;
      if (u.roomId === current) $("members").textContent = `· ${u.memberCount} online`;
    });
    chat.on("chat:read-receipt", (r) => {
      room(r.roomId).readers.set(r.userId, r.lastReadMessageId);
      if (r.roomId === current) renderReceipts();
    });
    chat.on("chat:user-typing", (t) => { room(t.roomId).typers.add(t.userId); if (t.roomId === current) renderTyping(); });
    chat.on("chat:user-stopped-typing", (t) => { room(t.roomId).typers.delete(t.userId); if (t.roomId === current) renderTyping(); });
    chat.on("chat:direct", (dm, ack) => {
      if (typeof ack === "function") ack({ success: true });
      if (seenDms.has(dm.id)) return;
      seenDms.add(dm.id);
      $("dm-list").prepend(el("li", `from ${dm.fromUserId}: ${dm.message}`));
      toast(`DM from ${dm.fromUserId}: ${dm.message}`);
    });
    chat.on("system:announcement", (a) => toast(`Announcement: ${a.message}`));
    chat.on("notification", onNotification);
    notes.on("notification", onNotification);
  }

  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const user = $("demo-user").value;
    try {
      const res = await fetch("/demo/token", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ userId: user }),
      });
      const body = await res.json();
      if (!res.ok || !body.token) return showSignIn(`${body.code || res.status}: ${body.error || "no token"}`);
      connect(user, body.token);
    } catch (err) {
      showSignIn(`Cannot reach the server: ${err.message}`);
    }
  });
  $("signout").addEventListener("click", () => {
    stop();
    rooms.clear();
    sessionStorage.removeItem(KEY);
    setStatus("signed out");
    showSignIn();
  });
  $("message-input").addEventListener("input", () => {
    if (!chat || editing !== null) return;
    if (typingTimer === null) chat.emit("chat:typing-start", { roomId: current });
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 2000);
  });
  $("reply-cancel").addEventListener("click", () => { replyTo = null; $("replying").hidden = true; });
  $("edit-cancel").addEventListener("click", cancelEdit);
  $("send-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("message-input");
    const text = input.value;
    if (!text.trim() || !chat) return;
    if (editing !== null) {
      try {
        const r = await ask("chat:edit", { messageId: editing, text });
        if (!r.success) return toast(`Not saved: ${r.code}: ${r.error}`);
        cancelEdit();
      } catch (_) { toast("Not saved: no answer (try again)"); }
      return;
    }
    stopTyping();
    const payload = { roomId: current, text, clientMsgId: clientId() };
    if (replyTo) payload.replyToId = replyTo.id;
    try {
      const r = await ask("chat:send", payload);
      if (!r.success) return toast(`Not sent: ${r.code}: ${r.error}`);
      input.value = "";
      replyTo = null;
      $("replying").hidden = true;
    } catch (_) { toast("Not sent: no answer (try again)"); }
  });
  $("dm-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const targetId = $("dm-target").value;
    const message = $("dm-input").value;
    if (!message.trim() || !chat) return;
    try {
      const r = await ask("user:direct-message", { targetId, message });
      if (!r.success) return toast(`DM not sent: ${r.code}: ${r.error}`);
      $("dm-input").value = "";
      $("dm-list").prepend(el("li", `to ${targetId}: ${message}`));
    } catch (_) { toast("DM not sent: no answer"); }
  });

  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch (_) { saved = null; }
  if (saved && saved.user && saved.token) {
    $("demo-user").value = saved.user;
    connect(saved.user, saved.token);
  } else {
    showSignIn();
  }
})();

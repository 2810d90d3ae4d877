// The demo chat (serve --demo): sign in as a demo user (POST /demo/token), join #lobby,
// history, send and reply, typing, read receipts, DMs, and notifications and announcements
// as toasts, with the stock socket.io-client. Text from others is set with textContent.
"use strict";
(function () {
  const ROOM = "lobby";
  const KEY = "realtime-demo";
  const $ = (id) => document.getElementById(id);
  let chat = null;
  let notes = null;
  let me = null;
  let replyTo = null;
  let typingTimer = null;
  let readTimer = null;
  const messages = new Map(); // id → <li>
  const readers = new Map(); // userId → message id it has read up to
  const typers = new Set();
  const seenDms = new Set();
  const seenNotes = new Set();

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
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

  function showSignIn(error) {
    $("chat").hidden = true;
    $("signin").hidden = false;
    $("signout").hidden = true;
    $("signin-error").textContent = error || "";
    $("signin-error").hidden = !error;
  }

  function renderReceipts() {
    for (const li of messages.values()) li.querySelector(".receipts").textContent = "";
    const by = new Map();
    for (const [user, id] of readers) {
      if (user === me || !messages.has(id)) continue;
      if (!by.has(id)) by.set(id, []);
      by.get(id).push(user);
    }
    for (const [id, users] of by) messages.get(id).querySelector(".receipts").textContent = `seen by ${users.join(", ")}`;
  }

  function addMessage(m) {
    if (messages.has(m.id)) return;
    const li = el("li");
    li.dataset.id = m.id;
    if (m.replyTo) li.append(el("div", `↪ ${m.replyTo.senderId}: ${m.replyTo.text}`, "quote"));
    const line = el("div");
    line.append(el("span", m.sender.name || m.sender.id, "sender"), document.createTextNode(" "), el("span", m.text, "text"));
    li.append(line);
    const meta = el("div", new Date(m.timestamp).toLocaleTimeString(), "meta");
    const reply = el("button", "Reply", "link");
    reply.type = "button";
    reply.setAttribute("aria-label", `Reply to ${m.sender.name || m.sender.id}: ${m.text}`);
    reply.addEventListener("click", () => {
      replyTo = { id: m.id, text: m.text };
      $("replying-to").textContent = `${m.sender.name || m.sender.id}: ${m.text}`;
      $("replying").hidden = false;
      $("message-input").focus();
    });
    meta.append(document.createTextNode(" "), reply, el("span", "", "receipts"));
    li.append(meta);
    messages.set(m.id, li);
    const list = $("message-list");
    list.append(li);
    list.scrollTop = list.scrollHeight;
  }

  function markRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      const ids = [...messages.keys()];
      const newest = ids[ids.length - 1];
      if (newest && chat && chat.connected && readers.get(me) !== newest) {
        readers.set(me, newest);
        chat.emit("chat:read", { roomId: ROOM, lastReadMessageId: newest });
      }
    }, 300);
  }

  function renderTyping() {
    const names = [...typers];
    $("typing").textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
  }

  function stopTyping() {
    if (typingTimer === null) return;
    clearTimeout(typingTimer);
    typingTimer = null;
    if (chat) chat.emit("chat:typing-stop", { roomId: ROOM });
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

  function connect(user, token) {
    stop();
    me = user;
    setStatus(`connecting as ${user}…`);
    chat = io("/", { auth: { token } });
    notes = io("/notifications", { auth: { token } });
    chat.on("connect", async () => {
      sessionStorage.setItem(KEY, JSON.stringify({ user, token }));
      setStatus(`signed in as ${user}`);
      $("signin").hidden = true;
      $("chat").hidden = false;
      $("signout").hidden = false;
      try {
        const r = await chat.timeout(5000).emitWithAck("room:join", ROOM);
        if (r.success) $("members").textContent = `· ${r.memberCount} online`;
        else toast(`Cannot join #${ROOM}: ${r.code}`);
      } catch (_) { toast("No answer to room:join"); }
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
      if (h.roomId !== ROOM) return;
      for (const m of h.messages) addMessage(m);
      markRead();
    });
    chat.on("chat:message", (m) => {
      if (m.roomId !== ROOM) return;
      addMessage(m);
      markRead();
    });
    chat.on("room:member-update", (u) => {
      if (u.roomId === ROOM) $("members").textContent = `· ${u.memberCount} online`;
    });
    chat.on("chat:read-receipt", (r) => {
      if (r.roomId !== ROOM) return;
      readers.set(r.userId, r.lastReadMessageId);
      renderReceipts();
    });
    chat.on("chat:user-typing", (t) => { if (t.roomId === ROOM) { typers.add(t.userId); renderTyping(); } });
    chat.on("chat:user-stopped-typing", (t) => { if (t.roomId === ROOM) { typers.delete(t.userId); renderTyping(); } });
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
    sessionStorage.removeItem(KEY);
    setStatus("signed out");
    showSignIn();
  });
  $("message-input").addEventListener("input", () => {
    if (!chat) return;
    if (typingTimer === null) chat.emit("chat:typing-start", { roomId: ROOM });
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 2000);
  });
  $("reply-cancel").addEventListener("click", () => { replyTo = null; $("replying").hidden = true; });
  $("send-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("message-input");
    const text = input.value;
    if (!text.trim() || !chat) return;
    stopTyping();
    const payload = { roomId: ROOM, text, clientMsgId: clientId() };
    if (replyTo) payload.replyToId = replyTo.id;
    try {
      const r = await chat.timeout(5000).emitWithAck("chat:send", payload);
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
      const r = await chat.timeout(5000).emitWithAck("user:direct-message", { targetId, message });
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

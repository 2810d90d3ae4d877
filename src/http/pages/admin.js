// The admin dashboard: signs in to the /admin namespace with an admin JWT (from
// `#token=…` or pasted; kept in sessionStorage, never sent in a URL), then shows the
// cluster's figures live (stats every second, lists every 2 s), the open connections of
// every node (each can be ended), the rooms with a view of
// one room's members and last messages (each deletable), the users with search,
// enable/disable and promote/demote, and offers the admin actions. Text from the server is
// always set with textContent.
"use strict";
(function () {
  const KEY = "realtime-admin-token";
  const SAMPLES = 300; // 5 minutes at one sample a second
  const $ = (id) => document.getElementById(id);
  let socket = null;
  let timers = [];
  let last = null; // {t, in, out}
  let openRoom = null; // the room shown in the room view
  let userQuery = "";
  let usersAsked = 0; // answers to older searches are dropped
  let socketUser = ""; // the sockets table shows only this user's when set
  let socketsAsked = 0;
  const SOCKETS_SHOWN = 200;
  const samples = []; // [{in, out}] events per second

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function setStatus(text) { $("status").textContent = text; }
  function showSignIn(error) {
    $("dash").hidden = true;
    $("signin").hidden = false;
    $("signout").hidden = true;
    const e = $("signin-error");
    e.textContent = error || "";
    e.hidden = !error;
  }
  function showDashboard() {
    $("signin").hidden = true;
    $("signin-error").hidden = true;
    $("dash").hidden = false;
    $("signout").hidden = false;
  }
  function stop() {
    timers.forEach(clearInterval);
    timers = [];
    if (socket) { socket.removeAllListeners(); socket.close(); socket = null; }
  }

  function uptime(s) {
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
  }

  function renderStats(st) {
    $("connections").textContent = String(st.connections);
    const ns = $("namespaces");
    ns.replaceChildren();
    for (const [name, n] of Object.entries(st.namespaces || {})) {
      ns.append(el("dt", name), el("dd", n));
    }
    const body = $("nodes-body");
    body.replaceChildren();
    for (const n of st.nodes || []) {
      const tr = el("tr");
      tr.append(el("td", n.id), el("td", n.connections), el("td", n.rooms), el("td", uptime(n.uptimeS || 0)));
      body.append(tr);
    }
    const now = Date.now();
    if (last && now > last.t) {
      const dt = (now - last.t) / 1000;
      const rin = Math.max(0, (st.eventsIn - last.in) / dt);
      const rout = Math.max(0, (st.eventsOut - last.out) / dt);
      samples.push({ in: rin, out: rout });
      if (samples.length > SAMPLES) samples.shift();
      $("rate-in").textContent = rin.toFixed(1);
      $("rate-out").textContent = rout.toFixed(1);
      drawChart();
    }
    last = { t: now, in: st.eventsIn, out: st.eventsOut };
  }

  function drawChart() {
    const max = Math.max(1, ...samples.map((s) => Math.max(s.in, s.out)));
    const line = (key) => samples
      .map((s, i) => `${((SAMPLES - samples.length + i) * 300 / (SAMPLES - 1)).toFixed(1)},${(79 - (s[key] / max) * 76).toFixed(1)}`)
      .join(" ");
    $("chart-in").setAttribute("points", line("in"));
    $("chart-out").setAttribute("points", line("out"));
    $("events-chart").setAttribute("aria-label", `Events per second over the last 5 minutes, up to ${max.toFixed(1)}`);
  }

  function renderRooms(rooms) {
    const body = $("rooms-body");
    body.replaceChildren();
    if (!rooms.length) {
      const tr = el("tr");
      const td = el("td", "No room has members online.", "muted");
      td.colSpan = 3;
      tr.append(td);
      body.append(tr);
    }
    for (const r of rooms) {
      const tr = el("tr");
      tr.dataset.roomId = r.id;
      const open = el("button", r.name, "link");
      open.type = "button";
      open.setAttribute("aria-label", `Open room ${r.name}`);
      const name = el("td");
      name.append(open);
      tr.append(name, el("td", r.memberCount), el("td", r.isPublic ? "public" : "private"));
      tr.addEventListener("click", () => showRoom(r.id, r.name));
      body.append(tr);
    }
  }

  /** A list's "nothing here" line. */
  function empty(list, text, colSpan) {
    if (colSpan) {
      const tr = el("tr");
      const td = el("td", text, "muted empty");
      td.colSpan = colSpan;
      tr.append(td);
      list.append(tr);
    } else {
      list.append(el("li", text, "muted empty"));
    }
  }

  // --- one room: members online and the last messages ---

  function showRoom(id, name) {
    openRoom = { id, name };
    $("room-detail-name").textContent = name;
    $("room-detail").hidden = false;
    refreshRoom();
    $("room-detail").scrollIntoView({ block: "nearest" });
  }
  async function refreshRoom() {
    if (!openRoom || !socket || !socket.connected) return;
    const { id } = openRoom;
    try {
      const [m, h] = await Promise.all([
        socket.timeout(2000).emitWithAck("admin:room-members", { roomId: id }),
        socket.timeout(2000).emitWithAck("admin:messages", { roomId: id, limit: 50 }),
      ]);
      if (!openRoom || openRoom.id !== id) return;
      const members = $("room-members");
      members.replaceChildren();
      if (m.success && m.members.length) {
        for (const u of m.members) members.append(el("li", `${u.userId} · ${u.online ? "online" : "offline"}`));
      } else empty(members, m.success ? "No members and nobody in the room." : `${m.code}: ${m.error}`);
      const list = $("room-messages");
      list.replaceChildren();
      if (h.success && h.messages.length) {
        for (const msg of h.messages) list.append(messageRow(msg));
      } else empty(list, h.success ? "No messages in this room." : `${h.code}: ${h.error}`);
    } catch (_) { /* the next round tries again */ }
  }
  function messageRow(m) {
    const li = el("li");
    li.dataset.id = m.id;
    const when = new Date(m.timestamp).toLocaleString();
    if (m.deletedAt) {
      li.append(el("span", `${m.sender.name || m.sender.id} · ${when} · `, "muted"), el("span", "deleted", "deleted"));
      return li;
    }
    li.append(el("span", `${m.sender.name || m.sender.id} · ${when}${m.editedAt ? " · edited" : ""}: `, "muted"), el("span", m.text));
    const del = el("button", "Delete", "link");
    del.type = "button";
    del.dataset.testid = "message-delete";
    del.setAttribute("aria-label", `Delete the message of ${m.sender.id}: ${m.text}`);
    del.addEventListener("click", async () => {
      await act("admin:delete-message", { messageId: m.id }, "Message deleted.");
      refreshRoom();
    });
    li.append(document.createTextNode(" "), del);
    return li;
  }

  // --- connections ---

  async function refreshSockets() {
    if (!socket || !socket.connected) return;
    const asked = ++socketsAsked;
    const userId = socketUser;
    try {
      const r = await socket.timeout(3000).emitWithAck("admin:sockets", userId ? { userId, limit: SOCKETS_SHOWN } : { limit: SOCKETS_SHOWN });
      if (asked !== socketsAsked) return;
      const body = $("sockets-body");
      body.replaceChildren();
      if (!r.success) return empty(body, `${r.code}: ${r.error}`, 9);
      $("sockets-count").textContent = r.sockets.length >= SOCKETS_SHOWN ? `(the oldest ${SOCKETS_SHOWN})` : `(${r.sockets.length})`;
      if (!r.sockets.length) return empty(body, userId ? `${userId} has no open connection.` : "No open connection.", 9);
      for (const s of r.sockets) body.append(socketRow(s));
    } catch (_) { /* the next round tries again */ }
  }
  function socketRow(s) {
    const tr = el("tr");
    tr.dataset.socketId = s.id;
    const id = el("td", s.id.length > 14 ? `${s.id.slice(0, 12)}…` : s.id, "mono");
    id.title = s.id;
    const action = el("td");
    const end = el("button", "Disconnect");
    end.type = "button";
    end.dataset.testid = "socket-disconnect";
    end.setAttribute("aria-label", `Disconnect socket ${s.id} of ${s.userId || "nobody"}`);
    end.addEventListener("click", async () => {
      await act("admin:disconnect-socket", { socketId: s.id }, `Socket ${s.id} disconnected.`);
      refreshSockets();
    });
    action.append(end);
    tr.append(id, el("td", s.userId || "—"), el("td", s.namespace), el("td", s.transport), el("td", s.address || "—"),
      el("td", s.node), el("td", new Date(s.connectedAt).toLocaleTimeString()), el("td", s.rooms.join(", ") || "—"), action);
    return tr;
  }

  // --- users ---

  async function refreshUsers() {
    if (!socket || !socket.connected) return;
    const asked = ++usersAsked;
    const query = userQuery;
    try {
      const r = await socket.timeout(2000).emitWithAck("admin:users", query ? { query, limit: 100 } : { limit: 100 });
      if (asked !== usersAsked) return;
      const body = $("users-body");
      body.replaceChildren();
      if (!r.success) return empty(body, `${r.code}: ${r.error}`, 5);
      if (!r.users.length) return empty(body, query ? `No user matches "${query}".` : "No users yet.", 5);
      for (const u of r.users) body.append(userRow(u));
    } catch (_) { /* the next round tries again */ }
  }
  function userRow(u) {
    const tr = el("tr");
    tr.dataset.userId = u.id;
    const who = el("td");
    who.append(el("strong", u.id), document.createTextNode(u.name && u.name !== u.id ? ` (${u.name})` : ""));
    const status = u.online ? "online" : u.lastSeen ? `offline since ${new Date(u.lastSeen).toLocaleString()}` : "offline";
    const actions = el("td");
    const toggle = el("button", u.isActive ? "Disable" : "Enable");
    toggle.type = "button";
    toggle.dataset.testid = "user-toggle";
    toggle.setAttribute("aria-label", `${u.isActive ? "Disable" : "Enable"} ${u.id}`);
    toggle.addEventListener("click", () => update({ userId: u.id, isActive: !u.isActive }, `${u.id} ${u.isActive ? "disabled" : "enabled"}.`));
    const role = el("button", u.role === "admin" ? "Demote" : "Promote");
    role.type = "button";
    role.dataset.testid = "user-role";
    role.setAttribute("aria-label", `${u.role === "admin" ? "Demote" : "Promote"} ${u.id} ${u.role === "admin" ? "to user" : "to admin"}`);
    role.addEventListener("click", () => update({ userId: u.id, role: u.role === "admin" ? "user" : "admin" }, `${u.id} is now ${u.role === "admin" ? "a user" : "an admin"}.`));
    actions.append(toggle, document.createTextNode(" "), role);
    tr.append(who, el("td", u.email), el("td", u.role), el("td", `${status}${u.isActive ? "" : " · disabled"}`), actions);
    return tr;
  }
  async function update(payload, done) {
    await act("admin:user-update", payload, done);
    refreshUsers();
  }

  function addAlert(a) {
    const list = $("stock-alerts");
    for (const e of list.querySelectorAll(".empty")) e.remove();
    const when = new Date(a.timestamp || Date.now()).toLocaleTimeString();
    const what = a.type === "STOCK_SOLD_OUT" ? "sold out" : `stock ${a.stock}${a.isLowStock ? " (low)" : ""}`;
    list.prepend(el("li", `${a.productId}: ${what} · ${when}`));
    while (list.children.length > 50) list.lastChild.remove();
  }

  async function poll() {
    if (!socket || !socket.connected) return;
    try {
      const st = await socket.timeout(2000).emitWithAck("admin:stats");
      if (st && st.success) renderStats(st);
    } catch (_) { setStatus("no answer from the server"); }
  }
  async function pollRooms() {
    if (!socket || !socket.connected) return;
    try {
      const r = await socket.timeout(2000).emitWithAck("admin:rooms", { limit: 100 });
      if (r && r.success) renderRooms(r.rooms);
    } catch (_) { /* the next round tries again */ }
  }

  function signIn(token) {
    stop();
    setStatus("connecting…");
    socket = io("/admin", { auth: { token } });
    socket.on("connect", () => {
      sessionStorage.setItem(KEY, token);
      setStatus("connected");
      showDashboard();
      last = null;
      poll();
      pollRooms();
      refreshUsers();
      refreshRoom();
      refreshSockets();
      timers = [setInterval(poll, 1000), setInterval(pollRooms, 2000), setInterval(refreshUsers, 2000), setInterval(refreshRoom, 2000),
        setInterval(refreshSockets, 2000)];
    });
    socket.on("connect_error", (err) => {
      const code = err && err.data && err.data.code;
      stop();
      sessionStorage.removeItem(KEY);
      setStatus("signed out");
      showSignIn(code ? `${code}: ${err.message}` : `Cannot connect: ${err.message}`);
    });
    socket.on("disconnect", (reason) => {
      if (reason === "io server disconnect") {
        stop();
        sessionStorage.removeItem(KEY);
        setStatus("signed out");
        showSignIn("The server ended this session (token expired, role changed or disconnected).");
      } else {
        setStatus("reconnecting…");
      }
    });
    socket.on("admin:stock-alert", addAlert);
    socket.on("admin:announcement", (m) => {
      const text = m && typeof m === "object" && "message" in m ? m.message : JSON.stringify(m);
      for (const e of $("admin-messages").querySelectorAll(".empty")) e.remove();
      $("admin-messages").prepend(el("li", `${new Date().toLocaleTimeString()} · ${text}`));
    });
  }

  async function act(event, payload, done) {
    const out = $("action-result");
    try {
      const r = await socket.timeout(3000).emitWithAck(event, payload);
      out.className = r.success ? "ok" : "error";
      out.textContent = r.success ? done : `${r.code}: ${r.error}`;
    } catch (_) {
      out.className = "error";
      out.textContent = "No answer from the server.";
    }
  }

  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("signin-token").value.trim();
    if (token) signIn(token);
  });
  $("signout").addEventListener("click", () => {
    stop();
    sessionStorage.removeItem(KEY);
    setStatus("signed out");
    showSignIn();
  });
  $("announce-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const message = $("announce-input").value;
    act("admin:announce", { message }, "Announcement sent.").then(() => { $("announce-input").value = ""; });
  });
  $("broadcast-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const message = $("broadcast-input").value;
    act("broadcast:all", { message }, "Sent to every admin.").then(() => { $("broadcast-input").value = ""; });
  });
  // search as you type (and on Enter)
  $("user-search").addEventListener("input", () => { userQuery = $("user-search").value.trim(); refreshUsers(); });
  $("user-search-form").addEventListener("submit", (e) => { e.preventDefault(); userQuery = $("user-search").value.trim(); refreshUsers(); });
  $("socket-filter").addEventListener("input", () => { socketUser = $("socket-filter").value.trim(); refreshSockets(); });
  $("socket-filter-form").addEventListener("submit", (e) => { e.preventDefault(); socketUser = $("socket-filter").value.trim(); refreshSockets(); });
  $("room-detail-close").addEventListener("click", () => { openRoom = null; $("room-detail").hidden = true; });
  $("disconnect-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const userId = $("disconnect-input").value.trim();
    act("admin:disconnect-user", { userId }, `Disconnected ${userId}.`);
  });

  // #token=… (the demo's printed link) is taken out of the address bar at once.
  const fromHash = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (fromHash) history.replaceState(null, "", location.pathname + location.search);
  const token = fromHash ? decodeURIComponent(fromHash[1]) : sessionStorage.getItem(KEY);
  if (token) signIn(token); else showSignIn();
})();

// The admin dashboard: signs in to the /admin namespace with an admin JWT (from
// `#token=…` or pasted; kept in sessionStorage, never sent in a URL), then shows the
// cluster's figures live and offers the admin actions. Text from the server is always set
// with textContent.
"use strict";
(function () {
  const KEY = "realtime-admin-token";
  const SAMPLES = 300; // 5 minutes at one sample a second
  const $ = (id) => document.getElementById(id);
  let socket = null;
  let timers = [];
  let last = null; // {t, in, out}
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
      tr.append(el("td", r.name), el("td", r.memberCount), el("td", r.isPublic ? "public" : "private"));
      body.append(tr);
    }
  }

  function addAlert(a) {
    const list = $("stock-alerts");
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
      timers = [setInterval(poll, 1000), setInterval(pollRooms, 2000)];
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

// Reference side of the connection storm (benches/storm.sh): Node's socket.io 4.x with the
// JWT middleware a Node app would write (jsonwebtoken, HS256 only) and the same users-table
// look-up as ours, in the same SQLite file (sql.js: SQLite compiled to WebAssembly, so no
// native build; it holds the file in memory, which only makes the look-up cheaper).
//   node storm.js HOST:PORT DB_FILE JWT_SECRET
const http = require("node:http");
const fs = require("node:fs");
const { Server } = require("socket.io");
const jwt = require("jsonwebtoken");
const initSqlJs = require("sql.js");

const [addr, dbFile, secret] = process.argv.slice(2);
const [host, port] = (addr || "127.0.0.1:0").split(":");

initSqlJs().then((SQL) => {
  const db = new SQL.Database(fs.readFileSync(dbFile));
  const find = db.prepare("SELECT role, is_active FROM users WHERE id = ?");
  const lookUp = (id) => {
    find.bind([id]);
    const row = find.step() ? find.getAsObject() : null;
    find.reset();
    return row;
  };
  const refuse = (next, code, message) => {
    const err = new Error(message);
    err.data = { code };
    next(err);
  };
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  io.use((socket, next) => {
    const token = socket.handshake.auth && socket.handshake.auth.token;
    if (!token) return refuse(next, "AUTH_REQUIRED", "Authentication required");
    let claims;
    try {
      claims = jwt.verify(token, secret, { algorithms: ["HS256"] });
    } catch (e) {
      return refuse(next, e.name === "TokenExpiredError" ? "TOKEN_EXPIRED" : "TOKEN_INVALID", "Invalid token");
    }
    const user = lookUp(String(claims.sub || claims.userId));
    if (!user) return refuse(next, "TOKEN_INVALID", "Unknown user");
    if (!user.is_active) return refuse(next, "ACCOUNT_DISABLED", "Account disabled");
    socket.data.user = { id: String(claims.sub), role: user.role };
    next();
  });
  io.on("connection", (socket) => {
    socket.join(`user:${socket.data.user.id}`);
    // the probe's event: answered at once (as ours answers a payload it refuses)
    socket.on("chat:typing-stop", (_payload, ack) => {
      if (typeof ack === "function") ack({ success: false, error: "roomId is required", code: "INVALID_PAYLOAD" });
    });
  });
  httpServer.listen(Number(port), host, () => {
    console.log(`listening on ${host}:${httpServer.address().port}`);
  });
});

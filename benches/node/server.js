// Reference side of the bench contract: Node's socket.io 4.x, a few lines.
const http = require("node:http");
const { Server } = require("socket.io");

const [host, port] = (process.argv[2] || "127.0.0.1:0").split(":");
const httpServer = http.createServer();
const io = new Server(httpServer, { cors: { origin: "*" } });
io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    socket.data.room = room;
    if (typeof ack === "function") ack(room);
  });
  socket.on("bcast", (a, b) => {
    if (typeof a === "string" && b !== undefined) io.to(a).emit("msg", b);
    else if (socket.data.room) io.to(socket.data.room).emit("msg", a);
  });
  socket.on("echo", (payload, ack) => {
    if (typeof ack === "function") ack(payload);
  });
});
httpServer.listen(Number(port), host, () => {
  console.log(`listening on ${host}:${httpServer.address().port}`);
});

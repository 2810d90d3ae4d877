// Shared fixture: starts the real echo server binary on a loopback port and gives
// small helpers that wait for events with a deadline (never a fixed sleep).
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { io } from "socket.io-client";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export function echoBinary() {
  if (process.env.ECHO_BIN) return process.env.ECHO_BIN;
  for (const profile of ["release", "debug"]) {
    const p = path.join(root, "target", profile, "examples", "echo");
    if (existsSync(p)) return p;
  }
  throw new Error("echo example not built: run `cargo build --release --examples`");
}

/** Starts the echo server with extra flags; resolves once it listens. */
export function startServer(args = [], opts = {}) {
  return startBinary(echoBinary(), ["--addr", "127.0.0.1:0", ...args], opts);
}

/** The product binary (`realtime-server`). */
export function serverBinary() {
  if (process.env.SERVER_BIN) return process.env.SERVER_BIN;
  for (const profile of ["release", "debug"]) {
    const p = path.join(root, "target", profile, "realtime-server");
    if (existsSync(p)) return p;
  }
  throw new Error("realtime-server not built: run `cargo build --release`");
}

/** Starts `realtime-server serve` on a free loopback port with `env` added; by default
 * with its own SQLite file in a temp dir. */
export function startProduct(env = {}, opts = {}) {
  const db = path.join(tmpdir(), `rt-test-${process.pid}-${Math.random().toString(36).slice(2)}.db`);
  return startBinary(serverBinary(), ["serve", "--addr", "127.0.0.1:0"], {
    ...opts,
    env: { DATABASE_URL: `sqlite://${db}`, ...env },
  });
}

/** Starts a server binary; resolves once it says where it listens (stdout or log). */
export function startBinary(bin, args, { env = {}, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
      cwd,
    });
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${bin} did not start in 10 s:\n${out}`)), 10000);
    proc.on("exit", (code) => reject(new Error(`${bin} exited early with ${code}:\n${out}`)));
    const onData = (d) => {
      out += d;
      const m = out.match(/listening on (?:http:\/\/)?([\d.]+):(\d+)/);
      if (m) {
        clearTimeout(timer);
        const port = Number(m[2]);
        const url = `http://127.0.0.1:${port}`;
        resolve({
          url,
          port,
          proc,
          output: () => out,
          async stop() {
            if (proc.exitCode === null && proc.signalCode === null) {
              const exited = new Promise((r) => proc.once("exit", r));
              proc.kill("SIGKILL");
              await exited;
            }
            const db = (env.DATABASE_URL || "").replace(/^sqlite:\/\//, "");
            if (db.startsWith(tmpdir())) {
              for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
            }
          },
          alive() {
            return proc.exitCode === null && proc.signalCode === null;
          },
        });
      }
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", (d) => {
      process.stderr.write(d);
      onData(d);
    });
  });
}

/** Resolves with the event's arguments, or rejects after `ms`. */
export function once(emitter, event, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off?.(event, handler);
      reject(new Error(`timeout waiting for "${event}"`));
    }, ms);
    const handler = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    emitter.once(event, handler);
  });
}

/** A connected socket.io-client socket. */
export async function connect(url, nsp = "/", opts = {}) {
  const socket = io(url + nsp, { forceNew: true, reconnection: false, ...opts });
  await once(socket, "connect", 5000);
  return socket;
}

/** Collects every emission of `event` on `socket`. */
export function collect(socket, event) {
  const got = [];
  socket.on(event, (...args) => got.push(args));
  return got;
}

/** Waits until `pred()` is true, polling every 10 ms, at most `ms`. */
export async function until(pred, ms = 3000, what = "condition") {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timeout waiting for ${what}`);
}

export const delay = (ms) => new Promise((r) => setTimeout(r, ms));

// The reference in docs/ is checked so it cannot drift: docs/openapi.yaml validates (OpenAPI
// 3.1, @apidevtools/swagger-parser) and each of its routes exists on a real server;
// docs/asyncapi.yaml validates (AsyncAPI 3, @asyncapi/parser); every event, error code and
// configuration key the server has is named in events.md / asyncapi.yaml, errors.md and
// configuration.md.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import SwaggerParser from "@apidevtools/swagger-parser";
import { Parser } from "@asyncapi/parser";
import { serverBinary, startProduct } from "./common.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const read = (p) => readFileSync(path.join(root, p), "utf8");
let srv;
before(async () => {
  srv = await startProduct({ JWT_SECRET: "docs-jwt-secret-padded-to-at-least-32-bytes", WEBHOOK_SECRET: "docs-hook-secret-padded-to-at-least-32-bytes", RT__SERVER__DEMO: "true" });
});
after(async () => { await srv?.stop(); });

/** The string constants of a Rust file matching `pattern` (one capture group). */
function constants(file, pattern) {
  return [...read(file).matchAll(pattern)].map((m) => m[1]);
}

test("openapi.yaml is valid OpenAPI and every route in it exists", async () => {
  const api = await SwaggerParser.validate(path.join(root, "docs", "openapi.yaml"));
  const fill = { id: "x", userId: "x", productId: "x", name: "style.css" };
  let checked = 0;
  for (const [p, item] of Object.entries(api.paths)) {
    for (const method of ["get", "put", "post", "delete"]) {
      if (!item[method]) continue;
      const url = srv.url + p.replace(/\{(\w+)\}/g, (_, k) => fill[k]);
      const res = await fetch(url, { method: method.toUpperCase(), body: method === "get" ? undefined : "{}" });
      const body = await res.text();
      const generic404 = res.status === 404 && /"error":"not found"/.test(body);
      assert.ok(!generic404, `${method.toUpperCase()} ${p} is not served`);
      assert.ok(String(res.status) in item[method].responses, `${method.toUpperCase()} ${p}: ${res.status} is documented`);
      checked++;
    }
  }
  assert.ok(checked >= 15, `${checked} operations`);
});

test("asyncapi.yaml is valid AsyncAPI 3 and names every event the server uses", async () => {
  const text = read("docs/asyncapi.yaml");
  const { document, diagnostics } = await new Parser().parse(text);
  const errors = diagnostics.filter((d) => d.severity === 0).map((d) => `${d.message} at ${d.path.join(".")}`);
  assert.deepEqual(errors, []);
  assert.ok(document);
  assert.equal(document.version(), "3.0.0");
  const events = constants("src/app/events.rs", /pub const \w+: &str = "([^"]+)";/g);
  assert.ok(events.length >= 30, `${events.length} events`);
  const named = new Set(document.allMessages().all().map((m) => m.name()));
  const docs = read("docs/events.md");
  for (const e of events) {
    assert.ok(named.has(e), `asyncapi.yaml names ${e}`);
    assert.ok(docs.includes(`\`${e}\``), `events.md describes ${e}`);
  }
});

test("errors.md lists every error code", () => {
  const codes = [
    ...constants("src/app/error.rs", /Code::\w+ => "([A-Z_]+)"/g),
    ...constants("src/auth.rs", /"code":\s*"([A-Z_]+)"/g),
    ...constants("src/auth.rs", /=> "([A-Z_]{6,})"/g),
  ];
  const unique = [...new Set(codes)];
  assert.ok(unique.length >= 11, `codes found: ${unique}`);
  const doc = read("docs/errors.md");
  for (const c of unique) assert.match(doc, new RegExp(`\\| \`${c}\` \\|`), `errors.md has ${c}`);
  for (const c of ["AUTH_REQUIRED", "TOKEN_EXPIRED", "TOKEN_INVALID", "ACCOUNT_DISABLED"]) assert.ok(doc.includes(`\`${c}\``));
});

test("configuration.md names every configuration key", () => {
  // every optional key set, so the effective settings print all of them
  const env = {
    ...process.env,
    JWT_SECRET: "x".repeat(32), WEBHOOK_SECRET: "y".repeat(32), CLUSTER_SECRET: "z".repeat(32),
    REDIS_URL: "redis://127.0.0.1:1/", RT__SERVER__PUBLIC_URL: "https://chat.example",
    RT__INTERNAL__ADDR: "127.0.0.1:4001", RT__AUTH__PUBLIC_KEY_PATH: "/nonexistent.pem",
  };
  const r = spawnSync(serverBinary(), ["config", "check"], { env, encoding: "utf8" });
  assert.ok(r.stdout.includes("[server]"), r.stderr);
  let section = "";
  const keys = [];
  for (const line of r.stdout.split("\n")) {
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) section = s[1];
    const k = /^(\w+) = /.exec(line);
    if (k && section) keys.push(`${section}.${k[1]}`);
  }
  assert.ok(keys.length >= 45, `${keys.length} keys`);
  const doc = read("docs/configuration.md");
  for (const k of keys) assert.ok(doc.includes(`\`${k}\``), `configuration.md documents ${k}`);
});

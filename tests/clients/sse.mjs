// A Server-Sent Events reader for the tests, over node's own http/https (so a self-signed
// certificate behind nginx can be accepted): parses `id:` / `event:` / `data:` / `retry:`
// fields and comment lines as they arrive, and says when the stream ends.
import http from "node:http";
import https from "node:https";

/** Opens `GET {url}/events{query}`. Resolves once the status line is in: `{status, headers,
 * body (non-200: parsed JSON), events, comments, ended, close()}`; `events` fills as they
 * arrive (`{event, id, data}` with `data` parsed as JSON). */
export function openEvents(url, { query = "", headers = {} } = {}) {
  const target = new URL(`/events${query}`, url);
  const mod = target.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(target, { headers, rejectUnauthorized: false, agent: false }, (res) => {
      const s = {
        status: res.statusCode,
        headers: res.headers,
        events: [],
        comments: [],
        retry: undefined,
        ended: false,
        close: () => req.destroy(),
      };
      if (res.statusCode !== 200) {
        let raw = "";
        res.setEncoding("utf8");
        res.on("data", (d) => { raw += d; });
        res.on("end", () => {
          s.ended = true;
          try { s.body = JSON.parse(raw); } catch { s.body = raw; }
          resolve(s);
        });
        return;
      }
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = {};
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) { s.comments.push(line.slice(1).trim()); continue; }
            const colon = line.indexOf(":");
            const key = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (key === "data") ev.data = ev.data === undefined ? value : `${ev.data}\n${value}`;
            else ev[key] = value;
          }
          if (ev.retry !== undefined) s.retry = Number(ev.retry);
          if (ev.data !== undefined) s.events.push({ event: ev.event ?? "message", id: ev.id, data: JSON.parse(ev.data) });
        }
      });
      const end = () => { s.ended = true; };
      res.on("end", end);
      res.on("close", end);
      res.on("error", end);
      resolve(s);
    });
    req.on("error", (e) => (e.code === "ECONNRESET" ? null : reject(e)));
    req.end();
  });
}

export const bearer = (token) => ({ authorization: `Bearer ${token}` });

#!/usr/bin/env bash
# Plain WebSocket (`/ws`) against Socket.IO over WebSocket on the same server build, in the
# same run: broadcast into a room of 1000 members (rates raised until p99 reaches 100 ms or a
# delivery is lost; deliveries/s, p99 and server CPU µs per delivery), and idle memory per
# connection at 10,000 connections. Loopback only, bounded in time.
#
#   benches/plain.sh [--quick]    (appends to target/bench/results.jsonl, prints a table)
source "$(dirname "$0")/lib.sh" "$@"
cargo build --release -p loadgen -p realtime-server --bins --example bench_server >&2
LG=target/release/loadgen

pid=""
stop() { [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; pid=""; }
trap stop EXIT
start() {
  local log="$out/plain-bench-server.log"
  target/release/examples/bench_server --addr 127.0.0.1:0 >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  url="http://$(grep -o 'listening on [0-9.:]*' "$log" | awk '{print $3}')"
}

rates="50 100 200 300 400 500 750 1000"; dur=4; conns=10000
[ $quick = 1 ] && { rates="50 200"; dur=2; conns=2000; }
: > "$out/plain.jsonl"
for transport in websocket plain; do
  start
  for r in $rates; do
    line=$("$LG" --url "$url" --pid "$pid" --label "$transport-search" broadcast --n 1000 --senders 10 \
      --rate "$r" --duration $dur --transport "$transport")
    echo "$line" | tee -a "$out/plain.jsonl" >>"$out/results.jsonl"
    ok=$(echo "$line" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(1 if d["latency"]["p99_ms"] < 100 and d["lost"] == 0 else 0)')
    [ "$ok" = 1 ] || break
  done
  stop
  start
  "$LG" --url "$url" --pid "$pid" --label "$transport-idle" connections --n $conns --rate 2000 --hold 3 \
    --transport "$transport" | tee -a "$out/plain.jsonl" >>"$out/results.jsonl"
  stop
done

python3 - "$out/plain.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def best(t):
    ok = [d for d in rows if d["label"] == f"{t}-search" and d["latency"]["p99_ms"] < 100 and d["lost"] == 0]
    return max(ok, key=lambda d: d["deliveries_per_s"]) if ok else None
def at(t, rate):
    m = [d for d in rows if d["label"] == f"{t}-search" and d["rate_msgs_per_s"] == rate]
    return m[0] if m else None
def idle(t):
    m = [d for d in rows if d["label"] == f"{t}-idle"]
    return (m[-1]["server_rss_per_conn_bytes"] or 0) / 1024 if m else 0
names = {"websocket": "Socket.IO (WebSocket)", "plain": "plain /ws"}
print("| figure | " + " | ".join(names.values()) + " |")
print("|---|---:|---:|")
b = {t: best(t) for t in names}
print("| best deliveries/s, 1000 members, p99 < 100 ms | " + " | ".join(f"{b[t]['deliveries_per_s']:.0f}" if b[t] else "-" for t in names) + " |")
print("| p99 ms at that rate | " + " | ".join(f"{b[t]['latency']['p99_ms']:.1f}" if b[t] else "-" for t in names) + " |")
print("| server CPU µs per delivery at that rate | " + " | ".join(f"{b[t]['server_cpu_us_per_delivery']:.2f}" if b[t] else "-" for t in names) + " |")
for rate in (50, 200):
    r = {t: at(t, rate) for t in names}
    print(f"| {rate}k deliveries/s: p99 ms / CPU µs per delivery | " + " | ".join(
        f"{r[t]['latency']['p99_ms']:.1f} / {r[t]['server_cpu_us_per_delivery']:.2f}" if r[t] else "-" for t in names) + " |")
print("| RSS per idle connection (KiB) | " + " | ".join(f"{idle(t):.1f}" for t in names) + " |")
PY

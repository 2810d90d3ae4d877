#!/usr/bin/env bash
# Before/after on one machine in one run: the scenarios of benches/run.sh (idle memory per
# connection, broadcast into 1000 members, echo) against two bench_server binaries, taken
# in turn (A, B, A, B ... per scenario) so drift in the machine hits both alike.
#
#   benches/compare.sh BEFORE_BIN AFTER_BIN [--quick]
#
# Build a "before" binary from another commit with e.g.
#   git worktree add /tmp/base <commit> && (cd /tmp/base && CARGO_TARGET_DIR=/tmp/base-target \
#     cargo build --release --example bench_server)
# Output: target/bench/compare.jsonl and a Markdown table on stdout.
set -euo pipefail
before=$(realpath "$1"); after=$(realpath "$2"); shift 2
source "$(dirname "$0")/lib.sh" "$@"
cargo build --release -p loadgen >&2
LG=target/release/loadgen
res="$out/compare.jsonl"
: > "$res"

conns=10000; rates="100 200 350 500 750 1000"; dur=4; echo_dur=5; rounds=2
if [ $quick = 1 ]; then conns=2000; rates="100 200"; dur=2; echo_dur=2; rounds=1; fi

pid=""
start() { # $1 = binary
  local log="$out/compare-server.log"
  "$1" --addr 127.0.0.1:0 >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  url="http://$(grep -o 'listening on [0-9.:]*' "$log" | awk '{print $3}')"
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap stop EXIT
lg() { "$LG" --url "$url" --pid "$pid" "$@" | tee -a "$res" >&2; }

for round in $(seq $rounds); do
  for side in before after; do
    bin=$before; [ $side = after ] && bin=$after
    echo "== round $round: $side" >&2
    start "$bin"; lg --label "$side" connections --n $conns --rate 2000 --hold 3; stop
    start "$bin"
    for r in $rates; do
      lg --label "$side-bcast" broadcast --n 1000 --senders 10 --rate "$r" --duration $dur
    done
    lg --label "$side-echo" echo --n 100 --inflight 16 --duration $echo_dur
    stop
  done
done

python3 - "$res" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(xs): return st.median(xs) if xs else float("nan")
def figs(side):
    conn = [d for d in rows if d["label"] == side and d["scenario"] == "connections"]
    bc = [d for d in rows if d["label"] == side + "-bcast"]
    ec = [d for d in rows if d["label"] == side + "-echo"]
    out = {"RSS per idle connection (KiB)": med([(d["server_rss_per_conn_bytes"] or 0) / 1024 for d in conn])}
    for rate in sorted({d["rate_msgs_per_s"] for d in bc}):
        at = [d for d in bc if d["rate_msgs_per_s"] == rate]
        k = f"{rate * 1000:,} deliveries/s offered"
        out[f"broadcast {k}: p99 ms"] = med([d["latency"]["p99_ms"] for d in at])
        out[f"broadcast {k}: server CPU µs/delivery"] = med([d["server_cpu_us_per_delivery"] or 0 for d in at])
        out[f"broadcast {k}: lost"] = sum(d["lost"] for d in at)
    out["echo 100×16: acks/s"] = med([d["acks_per_s"] for d in ec])
    out["echo 100×16: p99 ms"] = med([d["latency"]["p99_ms"] for d in ec])
    out["echo: server CPU µs/ack"] = med([d["server_cpu_us_per_ack"] or 0 for d in ec])
    return out
a, b = figs("before"), figs("after")
print("| figure (median of rounds) | before | after | after/before |")
print("|---|---:|---:|---:|")
for k in a:
    x, y = a[k], b.get(k, float("nan"))
    r = f"{y / x:.2f}" if x else "—"
    print(f"| {k} | {x:,.2f} | {y:,.2f} | {r} |")
PY

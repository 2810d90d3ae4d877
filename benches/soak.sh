#!/usr/bin/env bash
# Churn soak on the product server (SQLite, one node; DESIGN 20): 400 stock socket.io-client
# clients over 200 users connect over WebSocket, polling with upgrade or polling only, join
# 1–3 rooms, chat, read, type, follow presence, DM and `room:sync`, then disconnect cleanly
# or abruptly and connect again, for 20 minutes. Prints the server's RSS, open fds, the
# `rt_state_entries` gauges and the errors every minute, then once more after the clients
# stop and the server's timers ran out; exits 1 unless RSS ends within 10 % of minute 2,
# fds return to their baseline and errors stay at or under 0.1 %. Loopback only.
#
#   benches/soak.sh [--quick] [--minutes N] [--clients N] [--modes websocket,upgrade,polling]
#                   [--ends clean,abrupt]     (appends to target/bench/results.jsonl)
#   --quick: 4 minutes; SERVER_BIN=path runs another build (e.g. one with --features heap-profile
#   under heaptrack: SERVER_WRAP="heaptrack -o target/bench/soak")
source "$(dirname "$0")/lib.sh" "$@"
minutes=20
clients=400
extra=()
[ $quick = 1 ] && minutes=4
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) ;;
    --minutes) minutes=$2; shift ;;
    --clients) clients=$2; shift ;;
    --modes) extra+=(--modes "$2"); shift ;;
    --ends) extra+=(--ends "$2"); shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
bin=${SERVER_BIN:-target/release/realtime-server}
[ -n "${SERVER_BIN:-}" ] || cargo build --release -p realtime-server >&2
(cd tests && { [ -d node_modules/socket.io-client ] || npm ci --no-audit --no-fund --loglevel=error >&2; })
work=$(mktemp -d)
export JWT_SECRET=soak-jwt-secret-padded-to-32-bytes!! WEBHOOK_SECRET=soak-hook-secret-padded-to-32-bytes!
export DATABASE_URL="sqlite://$work/soak.db"
# the load's users share a few rooms and DM each other at will: its rates are the product's
# defaults except the per-socket event bucket, which a polling client's burst of queued
# packets can hit; the values used are printed below
export RT__PRESENCE__GRACE_MS=5000
pid=""
cleanup() { [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck disable=SC2086 # SERVER_WRAP is a command line
RUST_LOG=${SOAK_LOG:-warn,realtime_server=info,realtime_server::access=warn} ${SERVER_WRAP:-} "$bin" serve --addr 127.0.0.1:0 >"$out/soak-server.log" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q "listening on" "$out/soak-server.log" && break; sleep 0.1; done
url="http://$(grep -o 'listening on http://[0-9.:]*' "$out/soak-server.log" | head -1 | sed 's|.*http://||')"
# under a wrapper (heaptrack) the server is its child
spid=$(pgrep -P "$pid" realtime-serv || echo "$pid")
echo "soak: server $bin pid $spid at $url; presence grace ${RT__PRESENCE__GRACE_MS} ms, other limits default" >&2
node benches/soak.mjs --url "$url" --pid "$spid" --minutes "$minutes" --clients "$clients" \
  --jwt-secret "$JWT_SECRET" --webhook-secret "$WEBHOOK_SECRET" "${extra[@]}" | tee "$out/soak.txt" >&2
status=${PIPESTATUS[0]}
tail -1 "$out/soak.txt" >>"$out/results.jsonl"
exit "$status"

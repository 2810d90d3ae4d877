#!/usr/bin/env bash
# Webhook → delivery on the product server (SQLite): 10k connected users, 1k of them
# watching one product, stock webhooks posted one every 100 ms; the latency from each POST
# to each watcher's `notification`. Loopback only, bounded.
#
#   benches/notify.sh [--quick]     (called by benches/run.sh; appends to target/bench/results.jsonl)
source "$(dirname "$0")/lib.sh" "$@"
cargo build --release -p loadgen -p realtime-server >&2
work=$(mktemp -d)
export JWT_SECRET=bench-jwt-secret-padded-to-32-bytes WEBHOOK_SECRET=bench-hook-secret-padded-to-32-bytes DATABASE_URL="sqlite://$work/notify.db"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
RUST_LOG=warn,realtime_server=info,realtime_server::access=warn target/release/realtime-server serve --addr 127.0.0.1:0 >"$out/notify-server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$out/notify-server.log" && break; sleep 0.1; done
url="http://$(grep -o 'listening on http://[0-9.:]*' "$out/notify-server.log" | head -1 | sed 's|.*http://||')"
users=10000; watchers=1000; hooks=50
[ $quick = 1 ] && { users=2000; watchers=200; hooks=10; }
target/release/loadgen --url "$url" --pid "$pid" --label rust-notify notify \
  --jwt-secret "$JWT_SECRET" --webhook-secret "$WEBHOOK_SECRET" \
  --users $users --watchers $watchers --webhooks $hooks --interval-ms 100 | tee -a "$out/results.jsonl" >&2

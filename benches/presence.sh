#!/usr/bin/env bash
# Presence on the product server (SQLite, DESIGN 13): 10,000 users flap once each (connect,
# stay ~2 s, leave) while 100 sockets follow 1,000 users each (10 followers per user);
# user:status fan-out rate, latency and server CPU, and the outbound webhook events (two per
# user) a fast receiver in the load generator accepts. Loopback only, bounded.
#
#   benches/presence.sh [--quick]   (called by benches/run.sh; appends to target/bench/results.jsonl)
source "$(dirname "$0")/lib.sh" "$@"
cargo build --release -p loadgen -p realtime-server >&2
work=$(mktemp -d)
export JWT_SECRET=bench-jwt-secret-padded-to-32-bytes WEBHOOK_SECRET=bench-hook-secret-padded-to-32-bytes DATABASE_URL="sqlite://$work/presence.db"
grace=1000
recv_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
export RT__PRESENCE__GRACE_MS=$grace RT__WEBHOOKS__OUTBOUND_URL="http://127.0.0.1:$recv_port/hooks" \
  RT__WEBHOOKS__OUTBOUND_SECRET=bench-outbound-secret-padded-to-32-bytes \
  RT__LIMITS__EVENTS_BURST=1000
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
RUST_LOG=warn,realtime_server=info,realtime_server::access=warn target/release/realtime-server serve --addr 127.0.0.1:0 >"$out/presence-server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$out/presence-server.log" && break; sleep 0.1; done
url="http://$(grep -o 'listening on http://[0-9.:]*' "$out/presence-server.log" | head -1 | sed 's|.*http://||')"
users=10000; subscribers=100; follows=1000; rate=1000
[ $quick = 1 ] && { users=2000; subscribers=20; follows=1000; rate=1000; }
target/release/loadgen --url "$url" --pid "$pid" --label rust-presence presence \
  --jwt-secret "$JWT_SECRET" --webhook-secret "$WEBHOOK_SECRET" \
  --users $users --subscribers $subscribers --follows $follows --rate $rate \
  --hold-ms 2000 --grace-ms $grace --receiver "127.0.0.1:$recv_port" | tee -a "$out/results.jsonl" >&2

#!/usr/bin/env bash
# The server API and the event proxy (issue 28): `POST /internal/emit` calls/s to a room of
# 100 members and what reaches them, and `rpc:` round trips/s through a local backend that
# answers at once, with p50/p99 (benches/server_api.mjs). The product server on SQLite, one
# node, its event and send rates raised out of the way (printed below). Loopback only.
#
#   benches/server_api.sh [--quick]     (appends to target/bench/results.jsonl)
source "$(dirname "$0")/lib.sh" "$@"
seconds=10
[ $quick = 1 ] && seconds=3
bin=${SERVER_BIN:-target/release/realtime-server}
[ -n "${SERVER_BIN:-}" ] || cargo build --release -p realtime-server >&2
(cd tests && { [ -d node_modules/socket.io-client ] || npm ci --no-audit --no-fund --loglevel=error >&2; })
work=$(mktemp -d)
proxy_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export JWT_SECRET=bench-jwt-secret-padded-to-32-bytes!!! WEBHOOK_SECRET=bench-hook-secret-padded-to-32-bytes!
export RT__PROXY__SECRET=bench-proxy-secret-padded-to-32-bytes RT__PROXY__URL="http://127.0.0.1:$proxy_port/rpc"
export DATABASE_URL="sqlite://$work/bench.db"
export RT__LIMITS__EVENTS_PER_S=100000 RT__LIMITS__EVENTS_BURST=100000
echo "server_api: events per socket raised to 100000/s; other limits default" >&2
pid=""
cleanup() { [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
RUST_LOG=warn,realtime_server=info,realtime_server::access=warn "$bin" serve --addr 127.0.0.1:0 >"$out/server-api-server.log" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q "listening on" "$out/server-api-server.log" && break; sleep 0.1; done
url="http://$(grep -o 'listening on http://[0-9.:]*' "$out/server-api-server.log" | head -1 | sed 's|.*http://||')"
line=$(node benches/server_api.mjs --url "$url" --pid "$pid" --hook "$WEBHOOK_SECRET" --jwt "$JWT_SECRET" \
  --proxy-port "$proxy_port" --proxy-secret "$RT__PROXY__SECRET" --seconds "$seconds")
echo "$line" | tee -a "$out/results.jsonl"

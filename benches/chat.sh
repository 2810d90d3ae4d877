#!/usr/bin/env bash
# chat:send with ack into one room of 100 members on the product server with SQLite (the
# embedded default): acked messages/s, ack latency, deliveries. Loopback only, bounded.
#
#   benches/chat.sh [--quick]      (called by benches/run.sh; appends to target/bench/results.jsonl)
#   RT__ADMIN_UI__ENABLED=true ADMIN_UI_WATCHERS=1 benches/chat.sh   (with socket.io admin UIs watching)
source "$(dirname "$0")/lib.sh" "$@"
cargo build --release -p loadgen -p realtime-server >&2
LG=target/release/loadgen
BIN=${BIN:-target/release/realtime-server}  # BIN=… compares another build (docs/benchmarks.md)

work=$(mktemp -d)
export JWT_SECRET=bench-jwt-secret-padded-to-32-bytes WEBHOOK_SECRET=bench-hook-secret-padded-to-32-bytes DATABASE_URL="sqlite://$work/chat.db"
# The bench measures throughput: the per-socket and per-user rate limits (DESIGN 10) would
# refuse most of it, so they are raised out of its way (and said so).
export RT__LIMITS__EVENTS_PER_S=1000000 RT__LIMITS__EVENTS_BURST=1000000 \
  RT__LIMITS__USER_SENDS_PER_S=1000000 RT__LIMITS__USER_SENDS_BURST=1000000
echo "chat bench: limits raised: events_per_s=1000000 events_burst=1000000 user_sends_per_s=1000000 user_sends_burst=1000000" >&2
pid=""
cleanup() {
  [ -n "${watch_pid:-}" ] && kill "$watch_pid" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  [ -s "$work/watch.json" ] && tee -a "$out/results.jsonl" < "$work/watch.json" >&2
  rm -rf "$work"
}
trap cleanup EXIT
RUST_LOG=warn,realtime_server=info,realtime_server::access=warn ${SERVER_CPUS:+taskset -c $SERVER_CPUS} "$BIN" serve --addr 127.0.0.1:0 >"$out/chat-server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$out/chat-server.log" && break; sleep 0.1; done
url="http://$(grep -o 'listening on http://[0-9.:]*' "$out/chat-server.log" | head -1 | sed 's|.*http://||')"

put() { # route body; X-Signature-256 over t.METHOD.target.body (docs/security.md)
  local t sig
  t=$(date +%s)
  sig=$(printf '%s' "$t.PUT./internal$1.$2" | openssl dgst -sha256 -hmac "$WEBHOOK_SECRET" -r | cut -d' ' -f1)
  curl -sf -X PUT -H 'Content-Type: application/json' -H "X-Signature-256: t=$t,v1=$sig" \
    --data "$2" "$url/internal$1" >/dev/null
}
members=100
: > "$work/tokens"
for i in $(seq $members); do
  put "/users/bench$i" "{\"name\":\"Bench $i\",\"email\":\"b$i@example.com\",\"role\":\"user\",\"isActive\":true}"
  "$BIN" token --user "bench$i" --ttl 1h >> "$work/tokens"
done
put "/rooms/bench" '{"name":"Bench","isPublic":true}'
# ADMIN_UI_WATCHERS=N (with RT__ADMIN_UI__ENABLED=true): N socket.io admin UIs follow the run
# (every client event is passed to them, at most admin_ui's feed rate per node)
watch_pid=""
if [ -n "${ADMIN_UI_WATCHERS:-}" ]; then
  (cd tests && { [ -d node_modules/socket.io-client ] || npm ci --no-audit --no-fund --loglevel=error >&2; })
  put "/users/benchadmin" '{"name":"Bench admin","email":"ba@example.com","role":"admin","isActive":true}'
  node benches/admin_ui_watch.mjs "$url" "$("$BIN" token --user benchadmin --role admin --ttl 1h)" "$ADMIN_UI_WATCHERS" \
    > "$work/watch.json" &
  watch_pid=$!
  sleep 3
fi

dur=5; levels="20x1 50x1 100x1 100x2 100x4"
[ $quick = 1 ] && { dur=2; levels="20x1 100x2"; }
run() { # label tokens-file args...
  ${GEN_CPUS:+taskset -c $GEN_CPUS} "$LG" --url "$url" --pid "$pid" --label "$1" chat --tokens "$2" --room "$3" "${@:4}" | tee -a "$out/results.jsonl" >&2
}
run rust-chat-warmup "$work/tokens" bench --senders 10 --inflight 4 --duration 1 >/dev/null
# closed loop: more senders x messages in flight until p99 passes 50 ms
for l in $levels; do
  run rust-chat "$work/tokens" bench --senders "${l%x*}" --inflight "${l#*x}" --duration $dur
done
# the storage and ack path alone: a room of 10 (a tenth of the deliveries per message)
head -n 10 "$work/tokens" > "$work/tokens10"
put "/rooms/bench10" '{"name":"Bench 10","isPublic":true}'
run rust-chat-10 "$work/tokens10" bench10 --senders 10 --inflight 8 --duration $dur

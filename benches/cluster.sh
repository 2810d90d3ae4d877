#!/usr/bin/env bash
# Broadcast into one 1000-member room: one node, then two nodes (half the members on each,
# linked by a real redis-server on loopback). Deliveries/s and the latency the Redis hop adds.
# Both set-ups get the same two worker threads in all.
#
#   benches/cluster.sh [--quick]    (called by benches/run.sh; appends to target/bench/results.jsonl)
source "$(dirname "$0")/lib.sh" "$@"
cargo build --release -p loadgen -p realtime-server --bins --example bench_server >&2
LG=target/release/loadgen
command -v redis-server >/dev/null || { echo "redis-server is needed (apt-get install redis-server)" >&2; exit 1; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # log-name args... ; sets url and spid (not in a subshell: pids must be kept)
  local log="$out/$1.log"; shift
  target/release/examples/bench_server --addr 127.0.0.1:0 "$@" >"$log" 2>&1 &
  spid=$!
  pids+=($spid)
  for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  url="http://$(grep -o 'listening on [0-9.:]*' "$log" | awk '{print $3}')"
}

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no >"$out/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done

rates="20 50 100 200"; dur=4
[ $quick = 1 ] && { rates="50"; dur=2; }
# one node, two workers
start cluster-one --workers 2
one=$url
for r in $rates; do
  "$LG" --url "$one" --pid "$spid" --label one-node broadcast --n 1000 --senders 10 --rate "$r" --duration $dur | tee -a "$out/results.jsonl" >&2
done
kill "$spid"; wait "$spid" 2>/dev/null || true
# two nodes, one worker each, through Redis
export CLUSTER_SECRET="bench-cluster-secret-$(date +%s)-padded-to-32-bytes"
start cluster-a --workers 1 --redis "redis://127.0.0.1:$rport/"
a=$url
start cluster-b --workers 1 --redis "redis://127.0.0.1:$rport/"
b=$url
sleep 1
for r in $rates; do
  "$LG" --url "$a" --label two-nodes broadcast --n 1000 --senders 10 --rate "$r" --duration $dur --url2 "$b" | tee -a "$out/results.jsonl" >&2
done

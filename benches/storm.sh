#!/usr/bin/env bash
# Connection storm after a restart (issue 11): 10,000 clients with distinct JWTs, each
# checked against the users table, connect within one second of each other (the spread of
# socket.io-client's randomized reconnect delay) to a server that has just restarted. Ours on
# SQLite and on PostgreSQL, then Node's socket.io with a JWT middleware doing the same
# look-up in the same SQLite file, one after the other in one run. Reported: time until all
# are connected, connect time percentiles, server CPU seconds, and the ack latency of a
# socket connected before the storm (is the server still responsive?). Loopback only.
#
#   benches/storm.sh [--quick]     (appends to target/bench/results.jsonl, prints a table)
source "$(dirname "$0")/lib.sh" "$@"
cargo build --release -p loadgen -p realtime-server >&2
(cd benches/node && npm ci --no-audit --no-fund --loglevel=error >&2)
LG=target/release/loadgen
BIN=target/release/realtime-server
users=10000; window=1000
[ $quick = 1 ] && users=2000
prefix=storm-u

work=$(mktemp -d)
chmod 755 "$work"
export JWT_SECRET=storm-jwt-secret-padded-to-32-bytes WEBHOOK_SECRET=storm-hook-secret-padded-to-32-bytes
pid=""
stop_server() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=""
}
cleanup() {
  stop_server
  stop_pg
  rm -rf "$work"
}
trap cleanup EXIT

start_ours() { # label; env DATABASE_URL set; sets pid, url
  local log="$out/storm-$1.log"
  RUST_LOG=warn,realtime_server=info,realtime_server::access=warn "$BIN" serve --addr 127.0.0.1:0 >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do grep -q "listening on" "$log" && break; sleep 0.05; done
  url="http://$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's|.*http://||')"
}
start_node() { # db file; sets pid, url
  local log="$out/storm-node.log"
  node benches/node/storm.js 127.0.0.1:0 "$1" "$JWT_SECRET" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do grep -q "listening on" "$log" && break; sleep 0.05; done
  url="http://$(grep -o 'listening on [0-9.:]*' "$log" | awk '{print $3}')"
}
storm() { # label
  "$LG" --url "$url" --pid "$pid" --label "$1" storm --jwt-secret "$JWT_SECRET" --users "$users" \
    --prefix "$prefix" --window-ms "$window" | tee -a "$out/results.jsonl" "$work/storm.jsonl" >&2
}
# The users (and the probe's) go straight into the table: a directory call each would only
# make the set-up slow.
users_sql="INSERT INTO users (id, name, email, role, is_active, created_at)
  WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $users)
  SELECT '$prefix' || i, 'Storm ' || i, 'u' || i || '@example.com', 'user', TRUE, 0 FROM n
  UNION ALL SELECT '${prefix}probe', 'Probe', 'probe@example.com', 'user', TRUE, 0"

# --- ours on SQLite: start once (the schema), add the users, restart, storm
db="$work/storm.db"
export DATABASE_URL="sqlite://$db"
start_ours sqlite-setup; stop_server
python3 - "$db" "$users_sql" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.close()
PY
start_ours sqlite; storm rust-sqlite; stop_server

# --- ours on PostgreSQL (a throwaway cluster)
start_pg "$work/pg" -c max_connections=200
export DATABASE_URL="$pg_url"
start_ours postgres-setup; stop_server
as_pg "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -q -v ON_ERROR_STOP=1 -c "$users_sql"
start_ours postgres; storm rust-postgres; stop_server

# --- Node with the same look-up in the same SQLite file
start_node "$db"; storm node-sqlite; stop_server

python3 - "$work/storm.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n{rows[0]['users']} clients within {rows[0]['window_ms']} ms, on a server just restarted\n")
print("| server | connected | all in (s) | connect p50 / p99 (ms) | server CPU (s) | probe ack p50 / p99 / max (ms) |")
print("|---|---|---|---|---|---|")
for r in rows:
    c, p = r["connect"], r["probe"]
    print(f"| {r['label']} | {r['connected']}/{r['users']} | {r['all_connected_s']:.2f} | {c['p50_ms']:.1f} / {c['p99_ms']:.1f} | "
          f"{r['server_cpu_s'] or 0:.2f} | {p['p50_ms']:.1f} / {p['p99_ms']:.1f} / {p['max_ms']:.1f} |")
PY

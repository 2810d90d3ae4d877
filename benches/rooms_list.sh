#!/usr/bin/env bash
# rooms:list on 10,000 rooms × 1,000 messages (10 million rows), on SQLite and on a throwaway
# PostgreSQL cluster: the unread counts and last messages of a reader in 100 and in 1,000
# rooms, timed on the server's own query (benches/rooms_list.rs). Loopback only, bounded;
# needs about 5 GB of disk for the two databases and 10-20 minutes.
#
#   benches/rooms_list.sh [--quick]     (--quick: 1,000 rooms × 200 messages)
#   BACKENDS=postgres benches/rooms_list.sh   (one backend only)
source "$(dirname "$0")/lib.sh" "$@"
cargo build --release --bench rooms_list >&2
BIN=$(ls -t target/release/deps/rooms_list-* | grep -v '\.\(d\|txt\)$' | head -1)
[ $quick = 1 ] && export ROOMS=1000 MESSAGES=200
work=$(mktemp -d)
chmod 755 "$work"
pgdata=""; pgbin=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  [ -n "$pgdata" ] && as_pg "$pgbin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

export BENCH_JSONL="$out/results.jsonl"
backends=${BACKENDS:-sqlite postgres}
if [[ " $backends " == *" sqlite "* ]]; then
  echo "== SQLite" >&2
  DATABASE_URL="sqlite://$work/rooms_list.db" "$BIN" | tee "$out/rooms_list.md"
fi
[[ " $backends " == *" postgres "* ]] || exit 0

echo "== PostgreSQL" >&2
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/pg_ctl" ] || { echo "PostgreSQL is needed (apt-get install postgresql)" >&2; exit 1; }
pgdata="$work/pg"; mkdir -p "$pgdata"; [ "$(id -u)" = 0 ] && chown postgres "$pgdata"
pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
as_pg "$pgbin/pg_ctl" -D "$pgdata" -o "-p $pgport -c listen_addresses=127.0.0.1 -k $pgdata -c fsync=off" \
  -l "$pgdata/log" -w start >/dev/null
DATABASE_URL="postgres://postgres@127.0.0.1:$pgport/postgres" "$BIN" | tail -n +3 | tee -a "$out/rooms_list.md"

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
cleanup() {
  stop_pg
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
start_pg "$work/pg" -c fsync=off
DATABASE_URL="$pg_url" "$BIN" | tail -n +3 | tee -a "$out/rooms_list.md"

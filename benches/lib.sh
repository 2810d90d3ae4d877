# Sourced by the bench scripts (`source "$(dirname "$0")/lib.sh" "$@"`): strict mode, the
# repository root as working directory, `--quick`, and the output directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
out=target/bench
mkdir -p "$out"

# A throwaway PostgreSQL cluster under $1 (a directory of the caller's temp dir), on a free
# loopback port; extra server settings follow (`-c name=value` ...). Sets `pgbin`, `pgdata`,
# `pgport` and `pg_url`; `stop_pg` stops it (call it from the caller's EXIT trap).
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgdata=""; pgbin=""
start_pg() {
  local dir=$1; shift
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$pgbin/pg_ctl" ] || { echo "PostgreSQL is needed (apt-get install postgresql)" >&2; exit 1; }
  pgdata="$dir"; mkdir -p "$pgdata"; [ "$(id -u)" = 0 ] && chown postgres "$pgdata"
  pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
  as_pg "$pgbin/pg_ctl" -D "$pgdata" -o "-p $pgport -c listen_addresses=127.0.0.1 -k $pgdata $*" \
    -l "$pgdata/log" -w start >/dev/null
  pg_url="postgres://postgres@127.0.0.1:$pgport/postgres"
}
stop_pg() {
  [ -n "$pgdata" ] && as_pg "$pgbin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1
  pgdata=""
}

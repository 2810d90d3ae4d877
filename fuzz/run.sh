#!/usr/bin/env bash
# Fuzzes every protocol decoder for SECONDS each (default 600), one after another, starting
# from the seeds in fuzz/seeds/ (new inputs go to a temporary corpus, the repository stays
# clean). Exits non-zero on the first crash, leaving its input in fuzz/artifacts/.
#   fuzz/run.sh 20      # what the test command runs
#   fuzz/run.sh 3600    # a longer run (see README)
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable toolchain build it. The
# targets compile src/protocol from source (no server dependencies), so the build is quick.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
# -s none: safe Rust needs no AddressSanitizer; -a: debug assertions (overflow checks) on.
flags=(-O -s none -a)
cargo fuzz build "${flags[@]}"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
for t in engine_packet engine_payload socket_packet reassembler plain_frame; do
  echo "== fuzzing $t for ${secs}s"
  mkdir -p "$corpus/$t"
  log="$corpus/$t.log"
  status=0
  cargo fuzz run "${flags[@]}" "$t" "$corpus/$t" "seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^stat::(number_of_executed_units|new_units_added)" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz target $t failed (status $status); the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
echo "== fuzzing done: no crash"

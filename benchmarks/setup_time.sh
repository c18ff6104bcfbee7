#!/usr/bin/env bash
# Times each set-up step of the README's two commands on a fresh clone of this repository's HEAD.
#   bash benchmarks/setup_time.sh [WORKDIR]     (default: a new temporary folder; prints one line per step)
# The pip cache is left as it is: say in what you quote whether it was warm (a second run on the same machine is).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
git clone -q "$repo" "$work/medsyn"
cd "$work/medsyn"
step() {  # step NAME COMMAND...: run it, print its wall time
  local name="$1"; shift
  local start=$SECONDS
  "$@" > "$work/$name.log" 2>&1 || { echo "$name failed: see $work/$name.log"; tail -20 "$work/$name.log"; exit 1; }
  printf '%-34s %5d s   %s\n' "$name" $((SECONDS - start)) "$*"
}
echo "fresh clone of $(git rev-parse --short HEAD) in $work/medsyn"
step "venv + torch" make .venv/bin/.torch
step "medsyn[dev] from the lock" make setup-dev
step "system packages" make system-deps
step "tests" make test
tail -1 "$work/tests.log"
step "medsyn (demo set-up, no-op after dev)" make setup
step "demo" make demo

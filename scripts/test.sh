#!/usr/bin/env bash
# Runs every check and test: set-up, formatting, clippy, the UI's type
# check, every Rust test (unit, integration, end to end against the fakes
# and through the real desktop app), and the freshness of the generated
# TypeScript bindings.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TERM_COLOR=never
# A one-off build gains nothing from incremental state, which takes disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
(cd ui && npm run check --silent)

log=$(mktemp)
set +e
cargo test --workspace --all-targets 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# cargo prints one "test result" line per test binary; sum them into one
# closing line so the total is visible at a glance.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
[ "$status" -eq 0 ] || exit "$status"

# The tests above regenerate ui/src/bindings from the Rust types; what is
# committed must match.
if [ -n "$(git status --porcelain -- ui/src/bindings 2>/dev/null)" ]; then
  echo "error: ui/src/bindings is stale; run the tests and commit the regenerated files" >&2
  git status --porcelain -- ui/src/bindings >&2
  exit 1
fi

# Package check: one release build, bundled as a .deb, extracted and tried
# (scripts/check-package.sh says what it checks). It runs last since it is
# the slowest step: the release build is the only one in this script.
echo "== package check: build the .deb and try what it installs"
start=$SECONDS
bash scripts/check-package.sh
echo "package check: done in $((SECONDS - start)) s"

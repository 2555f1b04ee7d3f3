#!/usr/bin/env bash
# Builds Countersign and runs it against a local fake Molecule AI server with
# a few sample approvals, in a throwaway data dir: `countersign sync` shows
# requests as they arrive. Decide from another terminal with the printed
# commands. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --workspace --bins
bin=target/debug
data=$(mktemp -d)
export COUNTERSIGN_DATA_DIR=$data DEMO_TOKEN=demo-admin-token
"$bin/fake-molecule" --admin-token "$DEMO_TOKEN" --workspace "Release Manager" --workspace "Data Pipeline" \
  --approval "push tag v2.4.0|CI green on main" --approval "rotate prod db creds|quarterly rotation" \
  > "$data/fake.url" &
fake=$!
trap 'kill $fake 2>/dev/null' EXIT
for _ in $(seq 50); do [ -s "$data/fake.url" ] && break; sleep 0.1; done
url=$(cat "$data/fake.url")
"$bin/countersign" account add molecule --name demo --url "$url" --secret-env DEMO_TOKEN --secret-store file --reviewer "$USER"
cat <<MSG

Fake Molecule AI at $url; data dir $data. In another terminal:
  export COUNTERSIGN_DATA_DIR=$data
  $bin/countersign pending
  $bin/countersign decide 1 approve --comment "ship it"
  curl -s -X POST $url/__fake/approvals -d '{"action":"drop table invoices","reason":"cleanup"}'

MSG
"$bin/countersign" sync

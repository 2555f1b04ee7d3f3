#!/usr/bin/env bash
# Builds Countersign and launches the desktop app on your data dir
# ($COUNTERSIGN_DATA_DIR, else the OS data dir).
#
#   scripts/run.sh          the app, for real use
#   scripts/run.sh --demo   the app in a throwaway data dir, connected to a
#                           local fake Molecule AI server with sample approvals
#                           and a fake SurfSense server with paused threads
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --workspace --bins
bin=${CARGO_TARGET_DIR:-target}/debug

if [ "${1:-}" != "--demo" ]; then
  exec "$bin/countersign-desktop"
fi

data=$(mktemp -d)
export COUNTERSIGN_DATA_DIR=$data DEMO_TOKEN=demo-admin-token
"$bin/fake-molecule" --admin-token "$DEMO_TOKEN" \
  --workspace "Release Manager" --workspace "Data Pipeline" --workspace "Support Agent" \
  --approval "push tag v2.4.0 to production|CI green on main; changelog reviewed" \
  --approval "DROP TABLE staging_events_2025|Free 1.2 TB; unused since March" \
  --approval "send apology email to 3,402 customers|Outage notice drafted by the agent" \
  > "$data/fake.url" &
fake=$!
"$bin/fake-surfsense" > "$data/surf.url" 2>/dev/null &
surf=$!
trap 'kill $fake $surf 2>/dev/null' EXIT
for _ in $(seq 50); do [ -s "$data/fake.url" ] && [ -s "$data/surf.url" ] && break; sleep 0.1; done
url=$(cat "$data/fake.url")
"$bin/countersign" account add molecule --name demo --url "$url" --secret-env DEMO_TOKEN \
  --secret-store file --reviewer "${USER:-reviewer}"
SURF_PASSWORD='correct horse' "$bin/countersign" account add surfsense --name surf-demo \
  --url "$(cat "$data/surf.url")" --username kim@example.net --secret-env SURF_PASSWORD \
  --secret-store file --reviewer "${USER:-reviewer}"
cat <<MSG

Demo: fake Molecule AI at $url and fake SurfSense at $(cat "$data/surf.url"),
data dir $data.
Create more requests while the app runs:
  curl -s -X POST $url/__fake/approvals -d '{"action":"rotate prod db creds","reason":"quarterly"}'
Decide one "elsewhere" (it leaves the inbox by itself):
  curl -s -X POST $url/__fake/decide -d '{"approval_id":"<id>","decision":"denied","decided_by":"bob"}'

MSG
"$bin/countersign-desktop"

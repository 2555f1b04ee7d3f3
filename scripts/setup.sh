#!/usr/bin/env bash
# Installs what a fresh Debian 12 / Ubuntu machine lacks to build, run and
# test Countersign, then the UI's npm packages. Idempotent: installs only
# what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential pkg-config curl wget file ca-certificates
  # Tauri 2 on Linux (WebKitGTK 4.1, tray, notifications' D-Bus)
  libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev
  # Node for the UI build
  nodejs npm
  # running the app headless and testing it as a user would
  xvfb xauth dbus dbus-x11 webkit2gtk-driver imagemagick dunst time
  # a real OS keychain (Secret Service) for the keychain tests
  gnome-keyring libsecret-tools
  # packaging (scripts/package.sh) and checking the packages it makes
  dpkg-dev desktop-file-utils lintian xdotool x11-utils
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A machine may carry its own Node instead of Debian's.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
fi
read -r -a missing <<< "${missing[*]}"
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust from https://rustup.rs" >&2
  exit 1
fi
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
# WebDriver bridge for the end-to-end tests through the real app.
if ! command -v tauri-driver >/dev/null; then
  cargo install tauri-driver --locked
fi

# The UI: npm packages, then the bundle Tauri embeds.
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)

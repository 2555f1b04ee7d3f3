#!/usr/bin/env bash
# Regenerates every app icon from icons/icon.svg with Tauri's own icon
# command: the PNGs the Linux bundles install into hicolor (32 to 512
# pixels), icon.icns (macOS) and icon.ico (Windows). The results are
# committed; run this after editing icon.svg. (icons/tray.png, the tray's
# small monochrome mark, is drawn separately.)
set -euo pipefail
cd "$(dirname "$0")/.."
tauri=ui/node_modules/.bin/tauri
[ -x "$tauri" ] || (cd ui && npm ci --no-audit --no-fund --loglevel=error)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$tauri" icon icons/icon.svg -o "$tmp/all" >/dev/null 2>&1
"$tauri" icon icons/icon.svg -o "$tmp/more" --png 256 --png 512 >/dev/null 2>&1
# The mobile and Microsoft Store sets are left out: Countersign ships none.
cp "$tmp"/all/{32x32,64x64,128x128,128x128@2x,icon}.png "$tmp"/all/icon.{icns,ico} icons/
cp "$tmp"/more/{256x256,512x512}.png icons/
echo "icons: regenerated from icons/icon.svg"

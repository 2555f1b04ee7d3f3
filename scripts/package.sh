#!/usr/bin/env bash
# Builds Countersign's release bundles with the Tauri bundler: a .deb, an
# .rpm and an AppImage, each holding the desktop app and the `countersign`
# CLI (/usr/bin/countersign), its .desktop entry and hicolor icons. Installs
# what a fresh Debian 12 / Ubuntu machine lacks first (scripts/setup.sh),
# and prints where the bundles are.
#
#   scripts/package.sh            every Linux bundle
#   scripts/package.sh deb        only these (comma-separated: deb,rpm,appimage)
#
# The AppImage step downloads linuxdeploy and its AppRun from GitHub: on a
# machine that cannot reach GitHub it is reported as not built, and the
# other bundles still are. macOS and Windows bundles are built by the
# release workflow (.github/workflows/release.yml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TERM_COLOR=never
want=${1:-deb,rpm,appimage}
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
bundle_dir=$target/release/bundle
tauri=$PWD/ui/node_modules/.bin/tauri

# Bundles of an earlier run would be printed as this run's.
rm -rf "$bundle_dir"
# The CLI goes into the packages beside the app (bundle.linux.*.files in
# src-tauri/tauri.conf.json names it); build it first.
cargo build --release --locked -p countersign-cli
config=()
if [ "$target" != "$PWD/target" ]; then
  files="{\"/usr/bin/countersign\": \"$target/release/countersign\"}"
  config=(--config "{\"bundle\":{\"linux\":{\"deb\":{\"files\":$files},\"rpm\":{\"files\":$files}}}}")
fi

# Depends: the package of every shared library the two binaries link, with
# the versions they need, as dpkg-shlibdeps finds them (the bundler itself
# only names WebKitGTK, GTK and, for the tray, which is loaded at run time,
# libayatana-appindicator3).
shlib_depends() {
  local d
  d=$(mktemp -d)
  mkdir -p "$d/debian"
  printf 'Source: countersign\n\nPackage: countersign\nArchitecture: any\n' > "$d/debian/control"
  (cd "$d" && dpkg-shlibdeps -O "$@" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
  rm -rf "$d"
}

"$tauri" build --ci --no-bundle "${config[@]}"
# Symbols would nearly double the packages' size.
strip --strip-unneeded "$target/release/countersign-desktop" "$target/release/countersign"
deps=$(shlib_depends "$target/release/countersign-desktop" "$target/release/countersign")
[ -n "$deps" ] || { echo "package: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
json=$(tr ',' '\n' <<< "$deps" | sed 's/^ *//; s/ *$//; s/.*/"&"/' | paste -sd,)
config+=(--config "{\"bundle\":{\"linux\":{\"deb\":{\"depends\":[$json]}}}}")

# deb and rpm are made by the bundler itself; the AppImage needs tools
# from the network, so it is tried last and on its own.
first=$(tr ',' '\n' <<< "$want" | grep -v '^appimage$' | paste -sd, || true)
if [ -n "$first" ]; then
  "$tauri" bundle --ci --bundles "$first" "${config[@]}"
fi
if grep -qw appimage <<< "$want"; then
  if ! "$tauri" bundle --ci --bundles appimage "${config[@]}"; then
    echo "package: AppImage not built (its tools, linuxdeploy and AppRun, are downloaded from GitHub; is it reachable?)" >&2
  fi
fi

echo
echo "Bundles:"
find "$bundle_dir" -maxdepth 2 -type f \( -name '*.deb' -o -name '*.rpm' -o -name '*.AppImage' \) -printf '  %p\n' | sort

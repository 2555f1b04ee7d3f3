#!/usr/bin/env bash
# Builds the .deb (scripts/package.sh deb) and checks it as an installed
# package would be used, without installing it: extracted with
# `dpkg-deb -x` into a temp root,
#   - usr/bin/countersign --version prints the workspace version;
#   - the .desktop entry passes desktop-file-validate, its Exec binary is
#     in the package and its icon is in hicolor at the standard sizes;
#   - Depends names WebKitGTK 4.1 and a package for every shared library
#     the two binaries link;
#   - lintian finds no error, nor a warning about dependencies or
#     permissions;
#   - the Exec binary starts under Xvfb on an empty data dir (a temp HOME
#     and XDG dirs, never the user's) and draws its window; started by the
#     autostart entry's argument it keeps the window hidden.
# With a path as $1 it checks that .deb instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "package check: FAILED: $*" >&2; exit 1; }

if [ -n "${1:-}" ]; then
  deb=$(realpath "$1")
else
  bash scripts/package.sh deb
  deb=$(find "$(realpath -m "${CARGO_TARGET_DIR:-target}")/release/bundle/deb" -name '*.deb' | head -n1)
fi
[ -f "$deb" ] || fail "no .deb was built"
echo "package check: $deb"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
dpkg-deb -x "$deb" "$root"

# One version, everywhere.
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || fail "no version in Cargo.toml's [workspace.package]"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "the package's Version is $(dpkg-deb -f "$deb" Version), not $version"
cli=$root/usr/bin/countersign
[ -x "$cli" ] || fail "usr/bin/countersign is missing or not executable"
out=$("$cli" --version) || fail "usr/bin/countersign --version failed"
[ "$out" = "countersign $version" ] || fail "usr/bin/countersign --version printed '$out', not 'countersign $version'"
echo "ok: usr/bin/countersign --version: $out"

# The menu entry.
mapfile -t entries < <(find "$root/usr/share/applications" -name '*.desktop')
[ ${#entries[@]} -eq 1 ] || fail "expected one .desktop file, found ${#entries[@]}"
entry=${entries[0]}
desktop-file-validate "$entry" || fail "desktop-file-validate rejects ${entry#"$root"}"
for key in Name Comment Categories Exec Icon; do
  grep -q "^$key=." "$entry" || fail "${entry#"$root"} has no $key"
done
exec_bin=$(sed -n 's/^Exec=\([^ ]*\).*/\1/p' "$entry")
case $exec_bin in
  /*) app=$root$exec_bin ;;
  *) app=$root/usr/bin/$exec_bin ;;
esac
[ -x "$app" ] || fail "Exec=$exec_bin is not an executable in the package"
icon=$(sed -n 's/^Icon=//p' "$entry")
for size in 32x32 128x128 256x256 512x512; do
  [ -f "$root/usr/share/icons/hicolor/$size/apps/$icon.png" ] || fail "no $size icon for Icon=$icon"
done
echo "ok: ${entry#"$root"} is valid; Exec=$exec_bin is in the package; Icon=$icon in hicolor"

# Every linked library comes with a declared dependency.
depends=$(dpkg-deb -f "$deb" Depends)
names=$(tr ',' '\n' <<< "$depends" | sed 's/^ *//; s/[ (].*//' | sort -u)
grep -qx 'libwebkit2gtk-4.1-0' <<< "$names" || fail "Depends lacks libwebkit2gtk-4.1-0: $depends"
ldconfig -p > "$tmp/ldcache"
for bin in "$app" "$cli"; do
  for lib in $(objdump -p "$bin" | awk '/NEEDED/ { print $2 }'); do
    path=$(awk -v l="$lib" '$1 == l && /x86-64/ { print $NF; exit }' "$tmp/ldcache")
    [ -n "$path" ] || fail "$lib (linked by ${bin#"$root"}) is not on this machine"
    owner=$(dpkg -S "$(realpath "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true)
    pkg=${owner%%:*}
    [ -n "$pkg" ] || fail "no package owns $path"
    grep -qx "$pkg" <<< "$names" || fail "${bin#"$root"} links $lib from $pkg, which Depends does not name: $depends"
  done
done
echo "ok: Depends: $depends"

# lintian: errors, and warnings about what a desktop package needs.
lintian --tag-display-limit 0 --suppress-tags-from-file scripts/lintian-explained "$deb" > "$tmp/lintian" 2>&1 || true
cat "$tmp/lintian"
if grep -E '^E: |^W: .*(depend|perm|owner|setuid|setgid|desktop|icon|shared-lib|library)' "$tmp/lintian"; then
  fail "lintian (above); explained tags are in scripts/lintian-explained"
fi
echo "ok: lintian"

# The app starts on an empty data dir and draws its window.
home=$tmp/home
mkdir -p "$home"
run_app() { # $1: screenshot file; $2...: the app's arguments
  local shot=$1; shift
  env -i PATH=/usr/bin:/bin HOME="$home" XDG_CONFIG_HOME="$home/.config" \
    XDG_DATA_HOME="$home/.local/share" XDG_CACHE_HOME="$home/.cache" \
    XDG_RUNTIME_DIR="$home" APP="$app" SHOT="$shot" \
    timeout 120 xvfb-run -a -s "-screen 0 1280x860x24" dbus-run-session -- sh -c '
      "$APP" "$@" > "$HOME/app.log" 2>&1 & pid=$!
      # The window is mapped (visible) or, when started at login, exists unmapped.
      for i in $(seq 60); do
        xdotool search --name "^Countersign\$" > "$HOME/windows" 2>/dev/null && break
        sleep 0.5
      done
      sleep 4
      xdotool search --onlyvisible --name "^Countersign\$" > "$HOME/visible" 2>/dev/null || true
      import -window root "$SHOT"
      kill -0 $pid 2>/dev/null && echo running > "$HOME/alive"
      kill $pid; wait $pid 2>/dev/null || true' sh "$@"
}
rm -f "$home/alive" "$home/windows" "$home/visible"
run_app "$tmp/shot.png"
[ -f "$home/alive" ] || { cat "$home/app.log" >&2; fail "the app exited by itself"; }
[ -s "$home/visible" ] || { cat "$home/app.log" >&2; fail "the app showed no window named Countersign"; }
[ -f "$home/.local/share/countersign/countersign.sqlite3" ] || fail "the app did not open its store in the empty data dir ($(find "$home" -maxdepth 4 | head -20))"
colors=$(convert "$tmp/shot.png" -crop 1280x800+0+0 -format %k info:)
[ "$colors" -gt 50 ] || fail "the window looks blank ($colors colours)"
if [ -n "${COUNTERSIGN_SHOTS:-}" ]; then mkdir -p "$COUNTERSIGN_SHOTS"; cp "$tmp/shot.png" "$COUNTERSIGN_SHOTS/package.png"; fi
echo "ok: $exec_bin started on an empty data dir and drew its window ($colors colours)"

rm -f "$home/alive" "$home/windows" "$home/visible"
run_app "$tmp/login.png" --autostart
[ -f "$home/alive" ] || { cat "$home/app.log" >&2; fail "started with --autostart, the app exited"; }
[ -s "$home/windows" ] || fail "started with --autostart, the app made no window"
[ ! -s "$home/visible" ] || fail "started with --autostart, the window is shown; it should wait in the tray"
echo "ok: started with --autostart, it runs with its window hidden"
echo "package check: passed"

#!/bin/sh
# leakwatch-install-shim [DIR]
#
# The leakwatch image's init-container command: copies the shim and the
# libraries bundled with it (the lib/ directory next to this script's
# bin/, i.e. /opt/leakwatch/lib in the image) into DIR (default
# /leakwatch), a volume shared with the application container, which then
# sets LD_PRELOAD=DIR/libleakwatch.so.
#
# Each file is copied under a temporary name and renamed into place, so a
# process that already maps an older copy keeps running (cp over a mapped
# library would change it under that process).
set -eu

dest=${1:-/leakwatch}
src=$(CDPATH= cd -- "$(dirname -- "$0")/../lib" && pwd)
if [ ! -f "$src/libleakwatch.so" ]; then
  echo "leakwatch-install-shim: no libleakwatch.so in $src" >&2
  exit 1
fi
mkdir -p -- "$dest"
for f in "$src"/*; do
  [ -f "$f" ] || continue
  name=$(basename -- "$f")
  tmp=$dest/.$name.$$.tmp
  cp -L -- "$f" "$tmp"
  chmod 0755 "$tmp"  # readable by any user the app runs as
  mv -f -- "$tmp" "$dest/$name"
done
echo "leakwatch: shim installed in $dest; inject it with LD_PRELOAD=$dest/libleakwatch.so"

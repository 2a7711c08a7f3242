#!/bin/sh
# bundle-shim-libs.sh LIBDIR
#
# Makes LIBDIR (which holds libleakwatch.so) self-sufficient for images
# that lack the shim's shared libraries: copies libunwind.so.8 and the
# liblzma.so.5 it needs next to the shim. The shim's RUNPATH is $ORIGIN,
# so it finds libunwind there; RUNPATH is not inherited by dependencies,
# so the copied libunwind gets RUNPATH $ORIGIN too (patchelf), or it would
# look for liblzma only in the app image's system directories.
#
# Used by docker/Dockerfile at build time; needs ldd and patchelf.
set -eu

if [ $# -ne 1 ]; then
  echo "usage: $0 LIBDIR" >&2
  exit 2
fi
dir=$1
shim=$dir/libleakwatch.so
[ -f "$shim" ] || { echo "bundle-shim-libs: no $shim" >&2; exit 1; }
command -v patchelf >/dev/null || { echo "bundle-shim-libs: patchelf is needed" >&2; exit 1; }

# Where the build machine's loader finds a library that `object` needs.
resolve() {
  ldd "$1" | awk -v name="$2" '$1 == name && $3 ~ /^\// { print $3; exit }'
}

bundle() {  # bundle OBJECT SONAME
  path=$(resolve "$1" "$2")
  [ -n "$path" ] || { echo "bundle-shim-libs: ldd $1 does not resolve $2" >&2; exit 1; }
  if [ ! "$path" -ef "$dir/$2" ]; then
    cp -L "$path" "$dir/$2"
    chmod 0755 "$dir/$2"
  fi
}

bundle "$shim" libunwind.so.8
bundle "$dir/libunwind.so.8" liblzma.so.5
patchelf --set-rpath '$ORIGIN' "$dir/libunwind.so.8"

# Check: each bundled dependency resolves inside LIBDIR.
for pair in "libleakwatch.so libunwind.so.8" "libunwind.so.8 liblzma.so.5"; do
  set -- $pair
  got=$(resolve "$dir/$1" "$2")
  if [ ! "$got" -ef "$dir/$2" ]; then
    echo "bundle-shim-libs: $1 finds $2 at '$got', not in $dir" >&2
    exit 1
  fi
done
ls -l "$dir"

#!/bin/sh
# Installs the build into a scratch prefix, then builds a tiny program against
# it three ways (pkg-config shared, pkg-config static, CMake find_package) and
# runs each. Usage: check_install.sh build_dir consumer_src_dir [extra_cflags]
set -eu
build=$1
src=$2
xflags=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; echo "install: 0 passed, 1 failed"; exit 1; }
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -1 | xargs dirname)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# pkg-config writes the build-time prefix; point it at the scratch one.
sed -i "s|^prefix=.*|prefix=$tmp/prefix|" "$libdir/pkgconfig/mtconn.pc"
for f in mtconn.h version.h; do
  [ -f "$tmp/prefix/include/mtconn/$f" ] || { echo "install: missing include/mtconn/$f"; exit 1; }
done
cc -std=c11 $xflags -o "$tmp/c_shared" "$src/consumer.c" $(pkg-config --cflags --libs mtconn)
LD_LIBRARY_PATH="$libdir" "$tmp/c_shared"
# Static libmtconn with its dependencies linked dynamically (Debian ships no
# static libcurl dependency chain, so --static would not resolve).
cc -std=c11 $xflags -DMTC_STATIC -o "$tmp/c_static" "$src/consumer.c" $(pkg-config --cflags mtconn) \
  "$libdir/libmtconn.a" $(pkg-config --libs zlib jansson libcares libcurl) -lmbedcrypto
"$tmp/c_static"
if ldd "$tmp/c_static" | grep -q libmtconn; then echo "install: static consumer links libmtconn.so"; exit 1; fi
cmake -S "$src" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_FLAGS="$xflags" >"$tmp/cm.log" 2>&1 ||
  { cat "$tmp/cm.log"; echo "install: 0 passed, 1 failed"; exit 1; }
cmake --build "$tmp/cm" >"$tmp/cmb.log" 2>&1 || { cat "$tmp/cmb.log"; echo "install: 0 passed, 1 failed"; exit 1; }
LD_LIBRARY_PATH="$libdir" "$tmp/cm/consumer_shared"
"$tmp/cm/consumer_static"
echo "install: 1 passed, 0 failed"

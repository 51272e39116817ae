#!/bin/sh
# Fails if the shared library exports any dynamic symbol not named mtc_*.
# Usage: check_exports.sh path/to/libmtconn.so
set -eu
lib=$1
[ -f "$lib" ] || { echo "exports: no library at $lib"; exit 1; }
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWi]$/ {print $3}' | sed 's/@.*//' | sort -u)
total=$(printf '%s\n' "$syms" | grep -c . || true)
bad=$(printf '%s\n' "$syms" | grep -v -E '^mtc_' | grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$' || true)
if [ -n "$bad" ]; then
  echo "exports: symbols outside the mtc_ namespace:"
  printf '%s\n' "$bad" | head -50
  echo "exports: 0 passed, 1 failed"
  exit 1
fi
[ "$total" -gt 0 ] || { echo "exports: the library exports nothing"; echo "exports: 0 passed, 1 failed"; exit 1; }
echo "exports: $total symbols, all mtc_*"
echo "exports: 1 passed, 0 failed"

#!/usr/bin/env bash
# mtconn's entry point for people and CI. On a fresh Debian 12 machine it
# installs what is missing (apt-get), configures, builds and runs.
#
#   ./run.sh demo [demo args]   build and run mtconn-demo
#   ./run.sh test               build with -Werror and run the whole suite twice:
#                               plain, then under ASan+UBSan (+ short libFuzzer runs)
#   ./run.sh bench [what]       build and run mtconn-bench (default: all)
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD
jobs=$(nproc 2>/dev/null || echo 2)

build_pkgs=(gcc make cmake pkg-config libmbedtls-dev libc-ares-dev libcurl4-openssl-dev
            libjansson-dev zlib1g-dev)
test_pkgs=(clang libclang-rt-14-dev python3 python3-telethon perl)
bench_pkgs=(libssl-dev)

need() { # install the Debian packages that are not installed yet
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "run.sh: installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

configure_build() { # dir, then extra cmake args
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; exit 1; }
  cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1 ||
    { grep -E -A4 "error|Error" "$dir.build.log" | head -80; echo "run.sh: build failed in $dir"; exit 1; }
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  demo)
    need "${build_pkgs[@]}"
    mkdir -p build
    configure_build build -DMTC_BUILD_TESTS=OFF
    exec ./build/examples/mtconn-demo "$@"
    ;;
  test)
    need "${build_pkgs[@]}" "${test_pkgs[@]}"
    # interop_mtcute_tl: node (Debian 12's nodejs 18 is enough) and the npm
    # packages pinned in tests/interop/mtcute_tl/package-lock.json.
    { command -v node && command -v npm; } >/dev/null || need nodejs npm
    (cd tests/interop/mtcute_tl && { node check.mjs --installed ||
      npm ci --no-audit --no-fund --loglevel=error >/dev/null; })
    # interop_mtcute: node + npm and the packages pinned in
    # tests/interop/mtcute_client/package-lock.json (its .npmrc: no install scripts).
    { command -v node && command -v npm; } >/dev/null || need nodejs npm
    (cd tests/interop/mtcute_client && { node interop.mjs --check-installed >/dev/null ||
      npm ci --no-audit --no-fund --loglevel=error >/dev/null; })
    mkdir -p build-test build-asan
    echo "== plain build (-Wall -Wextra -Werror)"
    configure_build build-test -DMTC_WERROR=ON
    ctest --test-dir build-test --output-on-failure -j"$jobs"
    echo "== ASan+UBSan build (-Werror)"
    configure_build build-asan -DMTC_WERROR=ON -DMTC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir build-asan --output-on-failure -j"$jobs"
    if ls fuzz/fuzz_*.c >/dev/null 2>&1; then
      echo "== libFuzzer (clang, ASan+UBSan), a few seconds per target"
      mkdir -p build-fuzz
      CC=clang configure_build build-fuzz -DMTC_WERROR=ON -DMTC_SANITIZE=ON -DMTC_FUZZ=ON \
        -DMTC_BUILD_TESTS=OFF -DMTC_BUILD_EXAMPLES=OFF
      for f in fuzz/fuzz_*.c; do
        name=$(basename "$f" .c)
        short=${name#fuzz_}
        work=$(mktemp -d)
        [ -d "fuzz/corpus/$short" ] && cp -r "fuzz/corpus/$short/." "$work/"
        "./build-fuzz/fuzz/$name" -max_total_time="${MTC_FUZZ_SECONDS:-10}" -rss_limit_mb=2048 \
          "$work" >"build-fuzz/$name.log" 2>&1 ||
          { tail -40 "build-fuzz/$name.log"; echo "fuzz $short: FAILED"; exit 1; }
        echo "fuzz $short: $(grep -Eo 'Done [0-9]+ runs' "build-fuzz/$name.log" | tail -1)"
        rm -rf "$work"
      done
    fi
    echo "run.sh test: all suites passed"
    ;;
  bench)
    need "${build_pkgs[@]}" "${bench_pkgs[@]}"
    mkdir -p build-bench
    configure_build build-bench -DCMAKE_BUILD_TYPE=Release -DMTC_BUILD_BENCH=ON -DMTC_BUILD_TESTS=OFF
    exec ./build-bench/bench/mtconn-bench "$@"
    ;;
  *)
    echo "usage: ./run.sh demo|test|bench [args]" >&2
    exit 2
    ;;
esac

#!/bin/sh
# DESIGN.md rule 1: files of mtconn_core never touch sockets, clocks, threads,
# the C library's RNG, c-ares or curl. Reads the list of core files that CMake
# wrote, and first proves on planted fixtures that the scan can fail.
# Usage: check_purity.sh core_sources.txt fixtures_dir
set -u
list=$1
fixtures=$2

# Identifiers and headers that mean IO, time, threads or global randomness.
pattern='(#[[:space:]]*include[[:space:]]*<(sys/socket|netinet/[a-z_]+|arpa/inet|netdb|poll|sys/select|sys/epoll|pthread|threads|time|sys/time|ares|curl/curl|unistd|fcntl)\.h>)|(\b(socket|connect|accept|bind|listen|recv|send|recvfrom|sendto|select|poll|epoll_wait|time|clock|clock_gettime|gettimeofday|pthread_[a-z_]+|thrd_[a-z_]+|rand|srand|random|srandom|rand_r|drand48|getrandom|arc4random|ares_[a-z_]+|curl_[a-z_]+|sleep|usleep|nanosleep|fopen|open|read|write)[[:space:]]*\()'

scan() { # prints offending lines of one file, comments and string literals stripped
  perl -0777 -pe 's{/\*.*?\*/}{ my $c = $&; $c =~ tr/\n//cd; $c }gse; s{//[^\n]*}{}g; s{"(?:\\.|[^"\\\n])*"}{""}g' "$1" |
    grep -n -E "$pattern" || true
}

fail=0
# 1) the scanner must catch every planted violation.
for f in "$fixtures"/bad_*.c; do
  if [ -z "$(scan "$f")" ]; then
    echo "purity: the scan missed the planted violation in $f"; fail=1
  fi
done
for f in "$fixtures"/good_*.c; do
  if [ -n "$(scan "$f")" ]; then
    echo "purity: false positive in $f:"; scan "$f"; fail=1
  fi
done
# 2) the real core.
n=0
while IFS= read -r src; do
  [ -n "$src" ] || continue
  [ -f "$src" ] || continue
  n=$((n + 1))
  hits=$(scan "$src")
  if [ -n "$hits" ]; then
    echo "purity: $src does IO, time, threads or global randomness:"
    printf '%s\n' "$hits"
    fail=1
  fi
done < "$list"
[ "$n" -gt 0 ] || { echo "purity: no core files listed in $list"; fail=1; }
echo "purity: scanned $n core files"
if [ $fail -ne 0 ]; then echo "purity: 0 passed, 1 failed"; exit 1; fi
echo "purity: 1 passed, 0 failed"

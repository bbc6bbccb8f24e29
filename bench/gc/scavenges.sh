#!/bin/sh
# Sums the scavenges (`gc=s` lines of --trace-gc-nvp) of one script run: count, pause total, and
# the time in heap.external_weak_global_handles (weak callbacks run in the pause).
#   sh bench/gc/scavenges.sh bench/gc/weak-handles.mjs serialize 100 3000
node --expose-gc --trace-gc-nvp "$@" 2>&1 | awk '
  /gc=s/ { n++; for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "pause") p += kv[2]; if (kv[1] == "heap.external_weak_global_handles") w += kv[2] } }
  !/pause=/ { print }
  END { printf "scavenges %d, pauses %.1f ms, of it weak handles %.1f ms\n", n, p, w }'

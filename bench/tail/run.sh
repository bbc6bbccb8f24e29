#!/bin/sh
# `flock <lockfile> sh bench/tail/run.sh DIR [VAR=value ...]`: one rates-only bench:scale with the
# variables given, its output time-stamped into DIR/run.log, results in DIR/results.json, and
# every thread's CPU sampled each second into DIR/threads.jsonl; then, e.g.,
# `node bench/tail/phase-cpu.mjs DIR/run.log DIR/threads.jsonl 'LocalTransport local'`.
set -e
dir=$1
shift
mkdir -p "$dir"
node bench/tail/thread-cpu.mjs "$dir/threads.jsonl" 1000 &
sampler=$!
env SCALE_RATES_ONLY=1 SCALE_OUT="$dir/results.json" "$@" npm run bench:scale 2>&1 |
  while IFS= read -r line; do printf '%s %s\n' "$(date +%s%3N)" "$line"; done > "$dir/run.log"
kill "$sampler"

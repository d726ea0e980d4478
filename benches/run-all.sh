#!/usr/bin/env bash
# Runs every notifyd-load scenario with its preset, back to back, and keeps each table and JSON
# summary in OUT (default: bench-results/<date>). Build first:
#   cargo build --release -p notifyd -p benches
# Takes about 4 minutes on a 2-core machine; run it on an otherwise idle one.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results/$(date +%F)}
mkdir -p "$out"
load=target/release/notifyd-load
# `throughput --receiver nginx` needs Debian's nginx and wrk (apt-get install nginx wrk); alone:
#   target/release/notifyd-load throughput --receiver nginx --json t1-nginx.json   (about 30 s)
for scenario in "throughput" "throughput --receiver nginx" "throughput --endpoints 1000" "latency" "slow" "storm" "backlog"; do
  name=$(echo "$scenario" | tr ' ' '_' | tr -d '-')
  echo "== $scenario (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  # shellcheck disable=SC2086 # the preset's flags are meant to split
  $load $scenario --json "$out/$name.json" | tee "$out/$name.txt"
done

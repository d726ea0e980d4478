#!/usr/bin/env bash
# The PostgreSQL store's figures (issue 15), in one go: one host (delivered/s with the mock
# merchant and the ceiling, PostgreSQL CPU and WAL per notification), two and three hosts on the
# same database, p99 accept latency at 5 000/s, and a steady run of LONG seconds (default 180)
# sampling nd_* table sizes and dead tuples every 10 s. Each run starts its own PostgreSQL cluster
# with fsync on (Debian's postgresql package) and removes it after. JSON and tables go to OUT
# (default bench-results/pg-<date>), and a digest is printed at the end. Build first:
#   cargo build --release -p notifyd -p benches
# Takes about 5 minutes; run it on an otherwise idle machine (as root, the clusters run as the
# postgres user; otherwise as yourself).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results/pg-$(date +%F)}
long=${LONG:-180}
mkdir -p "$out"
load=target/release/notifyd-load
run() {
  local name=$1
  shift
  echo "== $name: $* (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  $load "$@" --store postgres --json "$out/$name.json" | tee "$out/$name.txt"
}
run hosts1 throughput --count 100000
run hosts2 throughput --count 100000 --hosts 2 --no-ceiling
run hosts3 throughput --count 100000 --hosts 3 --no-ceiling
run latency latency
run long custom --rate 2000 --duration "$long" --count $((2000 * long)) --connections 16 --batch 10 \
  --drain 60 --no-ceiling

echo "== digest ($out)"
for name in hosts1 hosts2 hosts3; do
  jq -r --arg n "$name" '"\($n): \(.delivered_per_s | floor) delivered/s of \(.delivered), ceiling \(.ceiling_per_s // "-"), notifyd \(.notifyd_cpu_us_per_delivered) us, postgres \(.pg_cpu_us_per_notification) us, WAL \(.pg_wal_bytes_per_notification) B per notification; accepted by host \(.accepted_by_host // [.accepted])"' "$out/$name.json"
done
jq -r '"latency at 5000/s: p99 ingest \(.ingest_request_latency.p99_ms) ms (p50 \(.ingest_request_latency.p50_ms)), p99 accepted->delivered \(.accepted_to_delivered.p99_ms) ms, postgres \(.pg_cpu_us_per_notification) us per notification"' "$out/latency.json"
echo "long run: t_s nd_queue(bytes live dead autovacuums) nd_notification(bytes) nd_outcome(bytes)"
jq -r '.pg_tables_over_time[] | "\(.t_s) \(.tables.nd_queue.bytes) \(.tables.nd_queue.live) \(.tables.nd_queue.dead) \(.tables.nd_queue.autovacuums) \(.tables.nd_notification.bytes) \(.tables.nd_outcome.bytes)"' "$out/long.json"

#!/usr/bin/env bash
# Soak: the release notifyd at a steady rate against a receiver failing 20 % of attempts,
# RSS and fds sampled every 10 s; checks every accepted notification ends delivered.
#   benches/soak.sh [SECONDS] [RATE]        (default 600 s at 5000/s)
# Prints one "soak t=..." line per sample and a final "SOAK RESULT" line.
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SECS="${1:-600}" SOAK_RATE="${2:-5000}"
exec cargo test -p notifyd --release --test reliability_soak -- --ignored --nocapture --test-threads=1

#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and prints executions per target.
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz pass its -Z sanitizer flags. Crashing inputs are left in fuzz/artifacts/<target>/;
# copy them into core/tests/fuzz_regressions.rs. The working corpus (fuzz/corpus/) starts from
# the committed seeds (fuzz/seeds/, made by seeds.py from core/tests/fixtures).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(envelope batch signature_header ack_classify inquiry http_response)
rustc --version | grep -q nightly || export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }

cargo fuzz build -O
status=0
printf '%-18s %14s %10s %s\n' target executions exec/s result
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
    log="$(mktemp)"
    if cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="CRASH (see fuzz/artifacts/$t/)"
        status=1
        tail -40 "$log" >&2
    fi
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
    rate="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
    printf '%-18s %14s %10s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$result"
    rm -f "$log"
done
exit $status

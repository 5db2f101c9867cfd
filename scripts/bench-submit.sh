#!/usr/bin/env bash
# Measures the dispatcher against the sandbox, release build, both as separate processes
# on loopback:
#  1. the sandbox limiting at 600/min and answering after 300 ms, soundbatch at
#     --rate 600/min: achieved submissions per minute as a share of the limit (goal at
#     least 0.97) and the number of 429 answers (goal 0);
#  2. no limit, no latency, 20,000 jobs: submissions per second and soundbatch's CPU
#     seconds per 1,000 jobs.
#   scripts/bench-submit.sh [JOBS_AT_LIMIT] [JOBS_UNLIMITED]
set -euo pipefail
cd "$(dirname "$0")/.."
at_limit="${1:-300}"
unlimited="${2:-20000}"
work="bench-data/submit"
rm -rf "$work"; mkdir -p "$work"
swift build -c release --product soundbatch >/dev/null
bin="$(swift build -c release --show-bin-path)/soundbatch"
export MUSICGPT_API_KEY=bench-key

source scripts/lib.sh

# 1. At the limit.
start_sandbox --rate 600/min --latency 300ms
jobs_csv "$at_limit" "$work/limit.csv"
"$bin" run "$work/limit.csv" --base-url "$url" --rate 600/min --concurrency 8 --quiet --ledger "$work/limit.sqlite" >/dev/null || true
stop_sandbox
read -r achieved throttled <<<"$(sqlite3 -separator ' ' "$work/limit.sqlite" "
    SELECT (COUNT(*) - 1) * 60.0 / ((julianday(MAX(started_at)) - julianday(MIN(started_at))) * 86400),
           (SELECT COUNT(*) FROM attempts WHERE http_status = 429)
    FROM attempts WHERE kind = 'submit' AND http_status = 200")"
printf '1. at the limit: %d jobs, sandbox 600/min with 300 ms latency, --rate 600/min --concurrency 8\n' "$at_limit"
printf '   achieved %.1f/min = %.3f of the limit (goal >= 0.97); 429 answers: %d (goal 0)\n' \
    "$achieved" "$(echo "$achieved / 600" | bc -l)" "$throttled"

# 2. Unlimited.
start_sandbox --rate none --look-rate none
jobs_csv "$unlimited" "$work/unlimited.csv"
"$bin" run "$work/unlimited.csv" --dry-run --quiet --ledger "$work/unlimited.sqlite"
start=$(date +%s.%N)
/usr/bin/time -f '%U %S' -o "$work/cpu.txt" \
    "$bin" resume --batch unlimited --base-url "$url" --rate 100000/s --concurrency 32 --quiet --ledger "$work/unlimited.sqlite" >/dev/null || true
end=$(date +%s.%N)
stop_sandbox
submitted=$(sqlite3 "$work/unlimited.sqlite" "SELECT COUNT(*) FROM jobs WHERE state = 'submitted'")
read -r user sys <"$work/cpu.txt"
wall=$(echo "$end - $start" | bc -l)
printf '2. no limit, no latency: %d of %d jobs submitted in %.1f s = %.0f submissions/s\n' \
    "$submitted" "$unlimited" "$wall" "$(echo "$submitted / $wall" | bc -l)"
printf '   soundbatch CPU: %.2f s user + %.2f s system = %.3f CPU seconds per 1,000 jobs\n' \
    "$user" "$sys" "$(echo "($user + $sys) * 1000 / $submitted" | bc -l)"

#!/usr/bin/env bash
# Times soundbatch's dry-run ingest of a 1,000,000-row CSV against sqlite3's own
# `.import` of the same file (the baseline), in one run, release build.
# Goal: at most 2x sqlite3's time, peak memory under 64 MB.
#   scripts/bench-ingest.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
work="bench-data"
mkdir -p "$work"
csv="$work/bench-$rows.csv"
[ -f "$csv" ] || python3 scripts/gen-csv.py "$rows" "$csv"
swift build -c release --product soundbatch >/dev/null
bin="$(swift build -c release --show-bin-path)/soundbatch"

seconds() { # command... -> wall seconds on stdout, the command's output discarded
    local start end
    start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

sqlite_time=$(seconds sqlite3 :memory: -cmd '.mode csv' ".import $csv t")
# A second reference: the same import into a WAL file on disk, durable like the ledger.
rm -f "$work/import.sqlite"*
sqlite_disk_time=$(seconds sqlite3 "$work/import.sqlite" -cmd 'PRAGMA journal_mode=WAL' -cmd '.mode csv' ".import $csv t")
rm -f "$work/import.sqlite"*
rm -f "$work/bench.sqlite"*
mem_log="$work/time-v.txt"
start=$(date +%s.%N)
/usr/bin/time -v "$bin" run "$csv" --dry-run --quiet --ledger "$work/bench.sqlite" 2>"$mem_log"
end=$(date +%s.%N)
ours=$(echo "$end - $start" | bc -l)
peak_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$mem_log")
jobs=$(sqlite3 "$work/bench.sqlite" 'SELECT COUNT(*) FROM jobs')

printf 'rows: %d (%s MB), jobs recorded: %d\n' "$rows" "$(du -m "$csv" | cut -f1)" "$jobs"
printf 'sqlite3 .import (baseline): %.2f s\n' "$sqlite_time"
printf 'sqlite3 .import into a WAL file on disk: %.2f s\n' "$sqlite_disk_time"
printf 'soundbatch run --dry-run:   %.2f s\n' "$ours"
printf 'ratio: %.2fx (goal <= 2x)\n' "$(echo "$ours / $sqlite_time" | bc -l)"
printf 'peak memory: %.1f MB (goal < 64 MB)\n' "$(echo "$peak_kb / 1024" | bc -l)"

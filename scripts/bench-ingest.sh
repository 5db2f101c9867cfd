#!/usr/bin/env bash
# Times soundbatch's dry-run ingest of a 1,000,000-row CSV, with its default output (the
# summary and the forecast, as a person runs it), against sqlite3's own
# `.import` of the same file (the baseline), in one run, release build.
# Goal: at most 2x sqlite3's time, peak memory under 64 MB.
# Then feeding again, as users do with a growing sheet: the same file into the ledger that
# holds it, and the file a tenth longer, each against a fresh feed of that file.
# Goal: at most 2x the fresh feed.
# Each side runs RUNS times, taken in turns, and the best time of each is compared:
# on a shared machine the best run is the one least disturbed by others.
#   scripts/bench-ingest.sh [ROWS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
runs="${2:-3}"
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
best() { printf '%s\n' "$@" | sort -g | head -1; }
list() { printf '%.2f ' "$@"; }

sqlite_times=(); sqlite_disk_times=(); our_times=(); peak_kb=0
mem_log="$work/time-v.txt"
for _ in $(seq "$runs"); do
    sqlite_times+=("$(seconds sqlite3 :memory: -cmd '.mode csv' ".import $csv t")")
    # A second reference: the same import into a WAL file on disk, durable like the ledger.
    rm -f "$work/import.sqlite"*
    sqlite_disk_times+=("$(seconds sqlite3 "$work/import.sqlite" -cmd 'PRAGMA journal_mode=WAL' -cmd '.mode csv' ".import $csv t")")
    rm -f "$work/import.sqlite"* "$work/bench.sqlite"*
    start=$(date +%s.%N)
    /usr/bin/time -v "$bin" run "$csv" --dry-run --ledger "$work/bench.sqlite" >/dev/null 2>"$mem_log"
    end=$(date +%s.%N)
    our_times+=("$(echo "$end - $start" | bc -l)")
    kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$mem_log")
    [ "$kb" -gt "$peak_kb" ] && peak_kb=$kb
done
jobs=$(sqlite3 "$work/bench.sqlite" 'SELECT COUNT(*) FROM jobs')

# Feeding again.
extended="$work/bench-$((rows + rows / 10)).csv"
[ -f "$extended" ] || python3 scripts/gen-csv.py "$((rows + rows / 10))" "$extended"
sqlite3 "$work/bench.sqlite" ".backup '$work/base.sqlite'"
again_times=(); extended_times=(); extended_fresh_times=()
for _ in $(seq "$runs"); do
    rm -f "$work/again.sqlite"*; cp "$work/base.sqlite" "$work/again.sqlite"
    again_times+=("$(seconds "$bin" run "$csv" --dry-run --ledger "$work/again.sqlite")")
    rm -f "$work/again.sqlite"*; cp "$work/base.sqlite" "$work/again.sqlite"
    extended_times+=("$(seconds "$bin" run "$extended" --batch "bench-$rows" --dry-run --ledger "$work/again.sqlite")")
    rm -f "$work/fresh.sqlite"*
    extended_fresh_times+=("$(seconds "$bin" run "$extended" --dry-run --ledger "$work/fresh.sqlite")")
done
added=$(sqlite3 "$work/again.sqlite" 'SELECT COUNT(*) FROM jobs')
rm -f "$work/again.sqlite"* "$work/fresh.sqlite"* "$work/base.sqlite"
sqlite_best=$(best "${sqlite_times[@]}")
ours_best=$(best "${our_times[@]}")

printf 'rows: %d (%s MB), jobs recorded: %d, best of %d runs each\n' "$rows" "$(du -m "$csv" | cut -f1)" "$jobs" "$runs"
printf 'sqlite3 .import (baseline):               %.2f s  (runs: %s)\n' "$sqlite_best" "$(list "${sqlite_times[@]}")"
printf 'sqlite3 .import into a WAL file on disk:  %.2f s  (runs: %s)\n' "$(best "${sqlite_disk_times[@]}")" "$(list "${sqlite_disk_times[@]}")"
printf 'soundbatch run --dry-run:                 %.2f s  (runs: %s)\n' "$ours_best" "$(list "${our_times[@]}")"
printf 'ratio: %.2fx (goal <= 2x)\n' "$(echo "$ours_best / $sqlite_best" | bc -l)"
printf 'peak memory: %.1f MB (goal < 64 MB)\n' "$(echo "$peak_kb / 1024" | bc -l)"
printf 'the same file again:                      %.2f s = %.2fx the fresh feed (goal <= 2x)  (runs: %s)\n' \
    "$(best "${again_times[@]}")" "$(echo "$(best "${again_times[@]}") / $ours_best" | bc -l)" "$(list "${again_times[@]}")"
printf 'a tenth longer, fresh:                    %.2f s  (runs: %s)\n' \
    "$(best "${extended_fresh_times[@]}")" "$(list "${extended_fresh_times[@]}")"
printf 'a tenth longer, fed again:                %.2f s = %.2fx its fresh feed (goal <= 2x); %d jobs after  (runs: %s)\n' \
    "$(best "${extended_times[@]}")" "$(echo "$(best "${extended_times[@]}") / $(best "${extended_fresh_times[@]}")" | bc -l)" \
    "$added" "$(list "${extended_times[@]}")"

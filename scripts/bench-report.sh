#!/usr/bin/env bash
# Builds a 1,000,000-job ledger, then times, release build, in one run:
#  - `soundbatch report` (totals; goal under 2 s) against sqlite3 running the same
#    GROUP BY on the same ledger (the baseline);
#  - `soundbatch report --jobs --format csv` against sqlite3's own CSV export of the
#    same columns (the baseline), with soundbatch's peak memory (goal: flat).
# Under scripts/with-postgres.sh, the same ledger is copied to PostgreSQL (`ledger copy`,
# timed) and the totals timed there too, against psql running the same GROUP BY:
#   scripts/bench-report.sh [ROWS]
#   SOUNDBATCH_PG_FSYNC=on scripts/with-postgres.sh scripts/bench-report.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
work="bench-data/report"
mkdir -p "$work"
csv="bench-data/bench-$rows.csv"
[ -f "$csv" ] || python3 scripts/gen-csv.py "$rows" "$csv"
swift build -c release --product soundbatch >/dev/null
bin="$(swift build -c release --show-bin-path)/soundbatch"
ledger="$work/report.sqlite"

if [ ! -f "$ledger" ]; then
    "$bin" run "$csv" --dry-run --quiet --batch bench --ledger "$ledger"
    # Give the jobs a realistic spread of states, estimates, charges and times.
    sqlite3 "$ledger" "
        UPDATE jobs SET
            state = CASE id % 20 WHEN 0 THEN 'pending' WHEN 1 THEN 'submitted' WHEN 2 THEN 'in_doubt'
                                 WHEN 3 THEN 'failed' WHEN 4 THEN 'generation_failed' ELSE 'completed' END,
            task_id = 'task-' || id,
            credit_estimate = CASE WHEN id % 20 IN (0, 2, 3) THEN NULL ELSE 1 + (id % 7) * 0.25 END,
            conversion_cost = CASE WHEN id % 20 >= 4 THEN 1 + (id % 7) * 0.25 + (id % 3 - 1) * 0.05 END,
            submitted_at = CASE WHEN id % 20 = 0 THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%fZ', '2026-11-01', '+' || (id / 1000) || ' minutes') END,
            completed_at = CASE WHEN id % 20 >= 4 THEN strftime('%Y-%m-%dT%H:%M:%fZ', '2026-11-01', '+' || (id / 1000 + 2) || ' minutes') END;"
fi

seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N); echo "$end - $start" | bc -l; }

base_totals=$(seconds sqlite3 "$ledger" "SELECT b.name, COUNT(*), SUM(j.state = 'completed'), TOTAL(j.credit_estimate), TOTAL(j.conversion_cost),
    MIN(j.submitted_at), MAX(j.submitted_at) FROM jobs j JOIN batches b ON b.id = j.batch_id GROUP BY b.name")
ours_totals=$(seconds "$bin" report --format csv --ledger "$ledger")
ours_html=$(seconds "$bin" report --format html --output "$work/spend.html" --ledger "$ledger")
# The export: each side three times, in turns; the best of each is compared (this machine
# is shared, and the best run is the one least disturbed).
base_runs=(); our_runs=()
for _ in 1 2 3; do
    base_runs+=("$(seconds sqlite3 -csv -header "$ledger" "SELECT b.name, j.row_key, j.take, j.source_line, j.prompt, j.audio_length,
        j.state, j.task_id, j.conversion_id, j.eta, j.credit_estimate, j.conversion_cost, j.request_in_doubt, j.verdict,
        j.remote_status, j.audio_url, j.download_path, j.submitted_at, j.completed_at, j.attempt_count, j.last_error, j.metadata
        FROM jobs j JOIN batches b ON b.id = j.batch_id ORDER BY b.name, j.id")")
    start=$(date +%s.%N)
    /usr/bin/time -v "$bin" report --jobs --format csv --output "$work/jobs.csv" --ledger "$ledger" 2>"$work/time-v.txt"
    end=$(date +%s.%N)
    our_runs+=("$(echo "$end - $start" | bc -l)")
done
base_export=$(printf '%s\n' "${base_runs[@]}" | sort -g | head -1)
ours_export=$(printf '%s\n' "${our_runs[@]}" | sort -g | head -1)
peak_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time-v.txt")

printf 'ledger: %d jobs\n' "$(sqlite3 "$ledger" 'SELECT COUNT(*) FROM jobs')"
printf 'totals:  sqlite3 GROUP BY (baseline) %.2f s; soundbatch report %.2f s (%.2fx; goal under 2 s); html with chart %.2f s\n' \
    "$base_totals" "$ours_totals" "$(echo "$ours_totals / $base_totals" | bc -l)" "$ours_html"
printf 'export:  sqlite3 -csv (baseline) %.2f s; soundbatch report --jobs --format csv %.2f s (%.2fx); peak memory %.1f MB (best of 3 each; runs: %s/ %s)\n' \
    "$base_export" "$ours_export" "$(echo "$ours_export / $base_export" | bc -l)" "$(echo "$peak_kb / 1024" | bc -l)" \
    "$(printf '%.2f ' "${base_runs[@]}")" "$(printf '%.2f ' "${our_runs[@]}")"

if [ -n "${SOUNDBATCH_TEST_POSTGRES:-}" ]; then
    database="report_$(date +%s)"
    psql "$SOUNDBATCH_TEST_POSTGRES" -qc "CREATE DATABASE $database"
    postgres="${SOUNDBATCH_TEST_POSTGRES%/*}/$database"
    copy=$(seconds "$bin" ledger copy "$ledger" "$postgres")
    psql "$postgres" -qc "VACUUM ANALYZE"
    pg_base=$(seconds psql "$postgres" -Atc "SELECT b.name, COUNT(*), SUM((j.state = 'completed')::int), SUM(j.credit_estimate),
        SUM(j.conversion_cost), MIN(j.submitted_at), MAX(j.submitted_at) FROM jobs j JOIN batches b ON b.id = j.batch_id GROUP BY b.name")
    pg_totals=$(seconds "$bin" report --format csv --ledger "$postgres")
    "$bin" report --format csv --ledger "$postgres" >"$work/totals-postgres.csv"
    "$bin" report --format csv --ledger "$ledger" >"$work/totals-sqlite.csv"
    same=$(cmp -s "$work/totals-postgres.csv" "$work/totals-sqlite.csv" && echo "the same as SQLite's" || echo "DIFFERENT from SQLite's")
    printf 'postgres: ledger copy %.1f s; psql GROUP BY (baseline) %.2f s; soundbatch report %.2f s (%.2fx; goal under 2 s); totals %s\n' \
        "$copy" "$pg_base" "$pg_totals" "$(echo "$pg_totals / $pg_base" | bc -l)" "$same"
fi

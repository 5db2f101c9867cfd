#!/usr/bin/env bash
# Feeding a team's ledger, release build, on a private PostgreSQL cluster with fsync on, in
# one run: ROWS rows (bench-ingest's file) fed into a new PostgreSQL ledger with `run
# --dry-run --quiet`, then the same file fed again, against psql's `\copy` of the same file
# into a table keyed as the ledger's jobs are (a batch and a row key), RUNS times each in
# turns; the best of each is compared. Goals: the fresh feed within 3x psql's \copy, the
# same file again within 2x the fresh feed.
#   SOUNDBATCH_PG_FSYNC=on scripts/with-postgres.sh scripts/bench-pg-feed.sh [ROWS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-200000}"
runs="${2:-3}"
: "${SOUNDBATCH_TEST_POSTGRES:?run it under scripts/with-postgres.sh}"
mkdir -p bench-data
csv="bench-data/bench-$rows.csv"
[ -f "$csv" ] || python3 scripts/gen-csv.py "$rows" "$csv"
swift build -c release --product soundbatch >/dev/null 2>&1
export PGOPTIONS="-c client_min_messages=warning"
bin="$(swift build -c release --show-bin-path)/soundbatch"
base="${SOUNDBATCH_TEST_POSTGRES%/*}"

seconds() { # command... -> wall seconds, its output discarded
    local start; start=$(date +%s.%N)
    "$@" >/dev/null
    echo "$(date +%s.%N) - $start" | bc -l
}
best() { printf '%s\n' "$@" | sort -g | head -1; }
list() { printf '%.2f ' "$@"; }
copy_file() { # psql's \copy into a fresh table with the ledger's unique key
    psql "$SOUNDBATCH_TEST_POSTGRES" -q \
        -c "DROP TABLE IF EXISTS copied" \
        -c "CREATE TABLE copied (batch_id bigint NOT NULL DEFAULT 1, row_key text NOT NULL, prompt text,
                audio_length text, scene text, PRIMARY KEY (batch_id, row_key))" \
        -c "\\copy copied (row_key, prompt, audio_length, scene) FROM '$csv' WITH (FORMAT csv, HEADER true)"
}
copies=(); fresh=(); again=()
for _ in $(seq "$runs"); do
    copies+=("$(seconds copy_file)")
    psql "$SOUNDBATCH_TEST_POSTGRES" -qc "DROP DATABASE IF EXISTS feed" -c "CREATE DATABASE feed"
    fresh+=("$(seconds "$bin" run "$csv" --batch bench --dry-run --quiet --ledger "$base/feed")")
    again+=("$(seconds "$bin" run "$csv" --batch bench --dry-run --quiet --ledger "$base/feed")")
done
jobs=$(psql "$base/feed" -Atc "SELECT COUNT(*) FROM jobs")
copied=$(best "${copies[@]}"); ours=$(best "${fresh[@]}"); ours_again=$(best "${again[@]}")
printf '%d rows (%s), PostgreSQL %s, fsync %s, %d cores; best of %d:\n' "$rows" "$csv" \
    "$(psql "$SOUNDBATCH_TEST_POSTGRES" -Atc 'SHOW server_version')" \
    "$(psql "$SOUNDBATCH_TEST_POSTGRES" -Atc 'SHOW fsync')" "$(nproc)" "$runs"
printf '  psql \\copy into a keyed table:   %6.2f s  (%s)\n' "$copied" "$(list "${copies[@]}")"
printf '  soundbatch feed, new ledger:    %6.2f s  (%s) %d jobs: %.2fx \\copy (goal at most 3x)\n' \
    "$ours" "$(list "${fresh[@]}")" "$jobs" "$(echo "$ours / $copied" | bc -l)"
printf '  the same file again:            %6.2f s  (%s) %.2fx the fresh feed (goal at most 2x)\n' \
    "$ours_again" "$(list "${again[@]}")" "$(echo "$ours_again / $ours" | bc -l)"

#!/usr/bin/env bash
# A team's sounds kept in its PostgreSQL ledger, release build, in one run: SOUNDS MP3s of
# 1 to 4 s (44.1 kHz stereo, 192 kb/s, made with ffmpeg) saved by machine A, whose
# `track --download` keeps each in the ledger; then the library exported by A from its own
# files and by B, a machine whose disk holds none of them, from the ledger; then B's
# `track --download` filling a folder from the ledger. Prints the files' size against the
# store's in the database, and B's times against A's export (the baseline), and checks that
# both libraries are the same bytes.
#   SOUNDBATCH_PG_FSYNC=on scripts/with-postgres.sh scripts/bench-store.sh [SOUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-10000}"
: "${SOUNDBATCH_TEST_POSTGRES:?run it under scripts/with-postgres.sh}"
work="$PWD/bench-data/store"
sources="$PWD/bench-data/store-sources-$count"
mkdir -p "$work" "$sources"
rm -rf "${work:?}"/*
swift build -c release --product soundbatch >/dev/null 2>&1
bin="$(swift build -c release --show-bin-path 2>/dev/null)/soundbatch"
export PGOPTIONS="-c client_min_messages=warning" MUSICGPT_API_KEY=bench
base="${SOUNDBATCH_TEST_POSTGRES%/*}"
db="$base/store"
psql "$SOUNDBATCH_TEST_POSTGRES" -qc "DROP DATABASE IF EXISTS store" -c "CREATE DATABASE store"

if [ "$(ls "$sources" | wc -l)" -lt "$count" ]; then
    seq 0 $((count - 1)) | xargs -P "$(nproc)" -I{} sh -c '
        n={}; d=$(echo "1 + ($n % 31) / 10" | bc -l)
        ffmpeg -nostdin -loglevel error -y -f lavfi -i "anoisesrc=d=$d:c=pink:seed=$n:a=0.$((n % 7 + 1))" \
            -f lavfi -i "sine=f=$((200 + n % 800)):d=$d" -filter_complex "amix=inputs=2,aformat=channel_layouts=stereo" \
            -ar 44100 -b:a 192k "'"$sources"'/s$n.mp3"'
fi
{
    echo "id,prompt"
    seq 0 $((count - 1)) | sed 's/.*/s&,sound &/'
} >"$work/sheet.csv"
"$bin" run "$work/sheet.csv" --dry-run --quiet --batch b --ledger "$db"
# The batch completed and saved by A, as a run would leave it.
(cd "$sources" && sha256sum -- *.mp3) | while read -r sha name; do
    printf '%s,%s/%s,%s,%s\n' "${name%.mp3}" "$sources" "$name" "$(stat -c %s "$sources/$name")" "$sha"
done >"$work/files.csv"
psql "$db" -q -c "CREATE TEMP TABLE f (row_key text, path text, size bigint, sha256 text)" \
    -c "\\copy f FROM '$work/files.csv' WITH (FORMAT csv)" \
    -c "UPDATE jobs SET state = 'completed', task_id = 'task-' || id, conversion_cost = 1.2,
            audio_url = 'https://storage.invalid/' || f.row_key || '.mp3', completed_at = '2026-12-01T10:00:00.000Z',
            download_path = f.path, download_key = lower(f.path), download_size = f.size,
            download_sha256 = f.sha256, download_machine = 'A'
        FROM f WHERE f.row_key = jobs.row_key"

seconds() { # command... -> wall seconds
    local start; start=$(date +%s.%N)
    "$@" >>"$work/commands.log" 2>&1
    echo "$(date +%s.%N) - $start" | bc -l
}
# No service answers here: whatever is saved comes from files or from the ledger.
track=(track --batch b --base-url http://127.0.0.1:9 --quiet --ledger "$db")
keep=$(SOUNDBATCH_MACHINE=A seconds "$bin" "${track[@]}" --download "$sources")
files=$(du -sb "$sources" | cut -f1)
stored=$(psql "$db" -Atc "SELECT pg_total_relation_size('sound_chunks') + pg_total_relation_size('sounds')")
kept=$(psql "$db" -Atc "SELECT COUNT(*) FROM sounds")
export_a=$(SOUNDBATCH_MACHINE=A seconds "$bin" export --batch b --to "$work/library-a" --ledger "$db" --quiet)
export_b=$(SOUNDBATCH_MACHINE=B seconds "$bin" export --batch b --to "$work/library-b" --ledger "$db" --quiet)
track_b=$(SOUNDBATCH_MACHINE=B seconds "$bin" "${track[@]}" --download "$work/sounds-b")
same=$(diff -rq -x '.soundbatch-export.jsonl' "$work/library-a" "$work/library-b" >/dev/null && echo yes || echo NO)
saved_b=$(ls "$work/sounds-b" | wc -l)
written=$(find "$work/library-b" -name '*.wav' | wc -l)

printf '%d sounds of 1 to 4 s, MP3 192 kb/s; PostgreSQL %s, fsync %s; %d cores:\n' "$count" \
    "$(psql "$db" -Atc 'SHOW server_version')" "$(psql "$db" -Atc 'SHOW fsync')" "$(nproc)"
printf '  the files:                        %8.1f MB\n' "$(echo "$files / 1000000" | bc -l)"
printf '  kept in the ledger (%d sounds):  %8.1f MB, %.2fx the files; A kept them in %.1f s\n' "$kept" \
    "$(echo "$stored / 1000000" | bc -l)" "$(echo "$stored / $files" | bc -l)" "$keep"
printf '  export on A, from its files:      %8.1f s (the baseline)\n' "$export_a"
printf '  export on B, from the ledger:     %8.1f s, %.2fx A; %d files, the same bytes as A'"'"'s: %s\n' \
    "$export_b" "$(echo "$export_b / $export_a" | bc -l)" "$written" "$same"
printf '  track --download on B:            %8.1f s, %d sounds saved from the ledger (%.0f a second)\n' \
    "$track_b" "$saved_b" "$(echo "$saved_b / $track_b" | bc -l)"

#!/usr/bin/env bash
# What checking every sound costs, release build, in one run:
#  1. A run's downloading and saving, with and without checks: JOBS (100) tasks of 10 s
#     finished at the sandbox (MP3, as the service sends), then `track --download` over them
#     from the same ledger copied, once with --no-check and once checking each sound as it is
#     saved, three times each, alternately: first with looks at the status endpoint's
#     documented limit (200/min), as a run meets them, then at 100/s, downloads back to back
#     on a machine that also serves and encodes them (what a check costs on its own).
#     Goal: checks add at most 5%.
#  2. `soundbatch check` over SOUNDS (1,000) saved sounds of about 4 s, MP3 at 44.1 kHz
#     stereo (those of bench-export.sh), against ffmpeg measuring each file with its
#     `ebur128=peak=true` and `astats` filters, as many files at once as there are cores.
#     Goal: soundbatch at least 5x faster.
#   scripts/bench-check.sh [JOBS] [SOUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:-100}"
count="${2:-1000}"
work="bench-data/check"
sources="bench-data/export-sources-$count"
cores=$(nproc)
rm -rf "$work"; mkdir -p "$work" "$sources"
swift build -c release --product soundbatch >/dev/null 2>&1
bin="$(swift build -c release --show-bin-path 2>/dev/null)/soundbatch"
export MUSICGPT_API_KEY=bench-key
source scripts/lib.sh

# 1. Downloading and saving, with and without checks.
start_sandbox --rate none --look-rate none --generation-time 200ms --generation-spread 0 --eta true \
    --generation-failure-rate 0 --audio-format mp3
trap stop_sandbox EXIT
jobs_csv "$jobs" "$work/sheet.csv" 10
"$bin" run "$work/sheet.csv" --batch b --base-url "$url" --rate 100/s --no-wait --quiet --ledger "$work/sent.sqlite" >/dev/null
sleep 1
seconds() { # what look-rate [options]: runs track on a fresh copy of the sent ledger, prints its seconds
    rm -rf "$work/$1" "$work/$1.sqlite"*
    cp "$work/sent.sqlite" "$work/$1.sqlite"
    local start; start=$(date +%s.%N)
    "$bin" track --batch b --download "$work/$1" --look-rate "$2" --quiet --ledger "$work/$1.sqlite" "${@:3}" >/dev/null
    echo "$(date +%s.%N) - $start" | bc -l
}
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
printf '1. %d sounds of 10 s (MP3, 16 kHz mono, from the sandbox on loopback) looked up, downloaded and saved; %d cores:\n' \
    "$jobs" "$cores"
for rate in 200/min 100/s; do
    plain=(); checked=()
    for round in 1 2 3; do
        plain+=("$(seconds plain "$rate" --no-check)")
        checked+=("$(seconds checked "$rate")")
    done
    without=$(median "${plain[@]}"); with=$(median "${checked[@]}")
    printf '   looks at %s:\n' "$rate"
    printf '     track --download --no-check:  %6.2f s  (median of %s)\n' "$without" "${plain[*]}"
    printf '     track --download, checking:   %6.2f s  (median of %s; %d checks kept)\n' "$with" "${checked[*]}" \
        "$(sqlite3 "$work/checked.sqlite" "SELECT COUNT(*) FROM checks")"
    printf '     checking adds %.1f%% (goal: at most 5%%)\n' "$(echo "($with / $without - 1) * 100" | bc -l)"
done
stop_sandbox; trap - EXIT

# 2. soundbatch check against ffmpeg, over the export benchmark's sounds.
export_sources "$count" "$sources"
ledger="$work/library.sqlite"
jobs_csv "$count" "$work/library.csv"
"$bin" run "$work/library.csv" --dry-run --quiet --batch b --ledger "$ledger"
sqlite3 "$ledger" "UPDATE jobs SET state = 'completed', task_id = 'task-' || id,
    completed_at = '2026-12-01T10:00:00.000Z', download_path = '$PWD/$sources/' || row_key || '.mp3'"
start=$(date +%s.%N)
"$bin" check --batch b --quiet --ledger "$ledger"
ours=$(echo "$(date +%s.%N) - $start" | bc -l)
start=$(date +%s.%N)
ls "$sources"/*.mp3 | head -n "$count" | xargs -P "$cores" -I{} \
    ffmpeg -nostdin -hide_banner -nostats -i {} -af ebur128=peak=true,astats -f null - 2>/dev/null
theirs=$(echo "$(date +%s.%N) - $start" | bc -l)
printf '2. %d sounds of about 4 s (MP3, 44.1 kHz stereo) measured; %d cores:\n' "$count" "$cores"
printf '   soundbatch check:                      %6.1f s (%d checks kept)\n' "$ours" \
    "$(sqlite3 "$ledger" "SELECT COUNT(*) FROM checks")"
printf '   ffmpeg ebur128=peak=true,astats each:  %6.1f s (%d at once)\n' "$theirs" "$cores"
printf '   soundbatch is %.2fx faster (goal: at least 5x)\n' "$(echo "$theirs / $ours" | bc -l)"
sqlite3 "$ledger" "SELECT '   findings: ' || COALESCE(NULLIF(GROUP_CONCAT(findings), ''), 'none') FROM checks WHERE findings <> ''"

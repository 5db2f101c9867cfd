#!/usr/bin/env bash
# A library out of 1,000 sounds of about 4 s, MP3 in (44.1 kHz stereo, as a service sends),
# 24-bit WAV out at -16 LUFS with true peaks under -1 dBTP, release build, in one run:
#  - soundbatch export (the machine's cores);
#  - ffmpeg doing the same work per file, side by side: two-pass loudnorm (the first pass
#    measures, the second applies it as one gain, linear=true), run on as many files at
#    once as there are cores (xargs -P).
# Then both libraries measured by ffmpeg's ebur128 on a sample of files. Goal: soundbatch faster.
#   scripts/bench-export.sh [SOUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-1000}"
work="bench-data/export"
sources="bench-data/export-sources-$count"
cores=$(nproc)
mkdir -p "$work" "$sources"
swift build -c release --product soundbatch >/dev/null 2>&1
bin="$(swift build -c release --show-bin-path 2>/dev/null)/soundbatch"

source scripts/lib.sh
export_sources "$count" "$sources"

ledger="$work/export.sqlite"
rm -rf "$work"/*
python3 - "$count" "$work/sheet.csv" <<'PY'
import sys
count, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as out:
    out.write("id,prompt,Category\n")
    for n in range(count):
        out.write(f"s{n},sound {n},{['DOORS', 'RAIN', 'STEPS', 'UI'][n % 4]}\n")
PY
"$bin" run "$work/sheet.csv" --dry-run --quiet --batch b --ledger "$ledger"
sqlite3 "$ledger" "UPDATE jobs SET state = 'completed', task_id = 'task-' || id, conversion_cost = 1.2,
    completed_at = '2026-12-01T10:00:00.000Z', download_path = '$PWD/$sources/' || row_key || '.mp3'"

start=$(date +%s.%N)
"$bin" export --batch b --to "$work/soundbatch" --loudness -16 --peak -1 --bits 24 --name "{Category}/{id}" \
    --ledger "$ledger" >"$work/soundbatch.log" 2>&1
ours=$(echo "$(date +%s.%N) - $start" | bc -l)

mkdir -p "$work/ffmpeg"
# The first pass's JSON, as the second pass's options.
cat >"$work/measured.py" <<'PY'
import json, sys
text = sys.stdin.read()
j = json.loads(text[text.rindex("{"):])
names = {"measured_I": "input_i", "measured_TP": "input_tp", "measured_LRA": "input_lra",
         "measured_thresh": "input_thresh", "offset": "target_offset"}
print(":".join(f"{option}={j[key]}" for option, key in names.items()))
PY
two_pass() { # in out
    local measured
    measured=$(ffmpeg -nostdin -hide_banner -nostats -i "$1" -af loudnorm=I=-16:TP=-1:LRA=11:print_format=json -f null - 2>&1 |
        python3 "$work/measured.py")
    ffmpeg -nostdin -loglevel error -y -i "$1" -af "loudnorm=I=-16:TP=-1:LRA=11:$measured:linear=true" \
        -ar 44100 -c:a pcm_s24le "$2"
}
export -f two_pass
export work
start=$(date +%s.%N)
seq 0 $((count - 1)) | xargs -P "$cores" -I{} bash -c "two_pass $sources/s{}.mp3 $work/ffmpeg/s{}.wav"
theirs=$(echo "$(date +%s.%N) - $start" | bc -l)

loudness() { ffmpeg -nostdin -hide_banner -nostats -i "$1" -af ebur128=peak=true -f null - 2>&1 |
    awk '/Summary/ {s=1} s && /I:/ {i=$2} s && /Peak:/ {p=$2} END {printf "%s LUFS, %s dBTP", i, p}'; }
echo "$count sounds, MP3 in (44.1 kHz stereo, about 4 s), 24-bit WAV out at -16 LUFS, peaks under -1 dBTP; $cores cores:"
printf '  soundbatch export:            %6.1f s\n' "$ours"
printf '  ffmpeg two-pass loudnorm:     %6.1f s (per file, %d at once)\n' "$theirs" "$cores"
printf '  soundbatch is %.2fx faster (goal: faster)\n' "$(echo "$theirs / $ours" | bc -l)"
for n in 0 1 $((count / 2)) $((count - 1)); do
    category=$(python3 -c "print(['DOORS', 'RAIN', 'STEPS', 'UI'][$n % 4])")
    echo "  s$n: soundbatch $(loudness "$work/soundbatch/$category/s$n.wav"); ffmpeg $(loudness "$work/ffmpeg/s$n.wav")"
done
grep -E "held|written" "$work/soundbatch.log" | sed 's/^/  /'

#!/usr/bin/env bash
# Renders the HTML report of a small batch in headless Chromium at a laptop's width (1280
# px) and a phone's (390 px), into PNG files to look at:
#   scripts/report-screens.sh [OUT_DIR]      (default bench-data/screens)
# The batch is jobs.example.csv run against the sandbox with some failures, so that every
# part of the page has something to show.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p "${1:-bench-data/screens}"
out="$(cd "${1:-bench-data/screens}" && pwd)"  # absolute: Chromium is given a file:// URL
work="$out/work"
rm -rf "$work"; mkdir -p "$work"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then echo "needs Chromium: apt-get install chromium" >&2; exit 1; fi
swift build --product soundbatch >/dev/null
bin="$(swift build --show-bin-path)/soundbatch"
export MUSICGPT_API_KEY=screens

source scripts/lib.sh
start_sandbox --generation-time 2s --eta true --failure-rate 0.1 --failures 500 --generation-failure-rate 0.2 --seed 3
trap stop_sandbox EXIT
"$bin" run jobs.example.csv --base-url "$url" --rate 600/min --max-attempts 1 --wait \
    --quiet --ledger "$work/ledger.sqlite" >/dev/null 2>&1 || true
"$bin" report --format html --output "$out/report.html" --ledger "$work/ledger.sqlite"

for width in 1280 390; do
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$width,1800" \
        --screenshot="$out/report-$width.png" "file://$out/report.html" >/dev/null 2>&1
    [ -s "$out/report-$width.png" ] || { echo "Chromium made no $out/report-$width.png" >&2; exit 1; }
    echo "$out/report-$width.png"
done

#!/usr/bin/env bash
# How close soundbatch runs to the API's limits, release build, the sandbox and soundbatch
# as separate processes on loopback.
#  1. Sending against three ways a server holds 60 submissions a minute: a token bucket
#     (a small burst, Retry-After in seconds), a 60-second sliding window, and a strict
#     leaky bucket (nothing early, no Retry-After). Prints the pace achieved as a share of
#     the limit and the share of requests answered 429. The bucket and the strict limiter
#     run SCALE times faster with latency scaled alike (a window cannot be: it is a minute).
#  2. Tracking: 120 jobs at 60/min, generations of about 25 s (lognormal, 15 to 45 s), the
#     documented eta of -1, 300-700 ms latency, looks limited to 200/min. Prints how long
#     after each task finished soundbatch saw it (mean and worst), looks per task, 429s,
#     and when the run ended against the last task's finish. Then the same with a true eta.
#   scripts/bench-limits.sh [SCALE] [JOBS]
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-10}"
jobs="${2:-200}"
work="bench-data/limits"
rm -rf "$work"; mkdir -p "$work"
swift build -c release --product soundbatch >/dev/null
bin="$(swift build -c release --show-bin-path)/soundbatch"
export MUSICGPT_API_KEY=bench-key

source scripts/lib.sh

ms() { python3 -c "print(int(round($1)))"; }

# 1. Sending.
send() { # name per-minute latency-ms jitter-ms sandbox-args...
    local name="$1" per_minute="$2" latency="$3" jitter="$4"; shift 4
    start_sandbox --rate "$per_minute/min" --latency "${latency}ms" --latency-jitter "${jitter}ms" "$@"
    jobs_csv "$jobs" "$work/$name.csv"
    "$bin" run "$work/$name.csv" --base-url "$url" --rate "$per_minute/min" --quiet \
        --ledger "$work/$name.sqlite" >/dev/null 2>&1 || true
    stop_sandbox
    python3 - "$work/$name.sqlite" "$per_minute" "$name" "$latency" "$jitter" <<'PY'
import sqlite3, sys
from datetime import datetime
path, limit, name, latency, jitter = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
db = sqlite3.connect(path)
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
ok = sorted(t(s) for (s,) in db.execute("SELECT started_at FROM attempts WHERE kind='submit' AND http_status=200"))
total, limited = db.execute("SELECT COUNT(*), SUM(http_status=429) FROM attempts WHERE kind='submit'").fetchone()
achieved = (len(ok) - 1) * 60 / (ok[-1] - ok[0])
print(f"   {name:<28} {limit:>5.0f}/min  {latency}-{latency + jitter} ms  achieved {achieved / limit:.3f} of the limit, "
      f"{limited or 0} of {total} answered 429 ({100 * (limited or 0) / total:.1f}%)")
PY
}

printf '1. sending %d jobs; bucket and strict %sx faster than 60/min, latency scaled alike\n' "$jobs" "$scale"
echo   "   (goals: bucket >= 0.99 and no 429; window >= 0.97 and no 429; strict >= 0.95 and <= 2% 429)"
fast=$((60 * scale)); l=$((300 / scale)); j=$((400 / scale))
send "bucket, Retry-After seconds" "$fast" "$l" "$j" --limiter bucket --retry-after seconds
send "window, Retry-After seconds" 60 300 400 --limiter window --retry-after seconds
send "strict, no Retry-After" "$fast" "$l" $((20 / scale)) --limiter strict --retry-after none
send "strict, jittery link" "$fast" "$l" "$j" --limiter strict --retry-after none
echo "   (on a jittery link no client can hold a strict limiter: spacing must cover the spread of"
echo "    arrival times, half the round trip's: at best interval / (interval + spread) = 1000 / 1200 = 0.83)"

# 2. Tracking.
track() { # name sandbox-args...
    local name="$1"; shift
    start_sandbox --rate 60/min --poll-rate 200/min --latency 300ms --latency-jitter 400ms \
        --generation-time 25s --generation-spread 0.3 "$@"
    jobs_csv 120 "$work/$name.csv"
    local started ended
    started=$(date +%s.%N)
    "$bin" run "$work/$name.csv" --base-url "$url" --wait --quiet --ledger "$work/$name.sqlite" >/dev/null 2>&1 || true
    ended=$(date +%s.%N)
    curl -s "$url/_sandbox/tasks" >"$work/$name.tasks.json"
    stop_sandbox
    python3 - "$work/$name.sqlite" "$work/$name.tasks.json" "$started" "$ended" "$name" <<'PY'
import json, sqlite3, sys
from datetime import datetime
db_path, tasks_path, started, ended, name = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
finishes = {task["task_id"]: t(task["finishes_at"]) for task in json.load(open(tasks_path))}
db = sqlite3.connect(db_path)
seen = {task: t(at) for task, at in db.execute("SELECT task_id, completed_at FROM jobs WHERE completed_at IS NOT NULL")}
delays = [seen[task] - finishes[task] for task in seen]
looks, limited = db.execute("SELECT COUNT(*), SUM(http_status=429) FROM attempts WHERE kind='poll'").fetchone()
last = max(finishes.values())
print(f"   {name}: {len(seen)} of {len(finishes)} seen completed, {looks / len(finishes):.2f} looks per task, "
      f"{limited or 0} looks answered 429")
print(f"      seen {sum(delays) / len(delays):.1f} s after finishing on average, {max(delays):.1f} s at worst; "
      f"the run ended {ended - last:.1f} s after the last finish = {100 * (ended - started) / (last - started) - 100:.1f}% late")
PY
}

echo "2. tracking 120 jobs at 60/min, generations ~25 s, 300-700 ms latency, 200 looks/min"
echo "   (goals with eta unknown: seen within 4 s on average, 15 s at worst, no 429, the run <= 3% late;"
echo "    with a true eta: at most 1.5 looks per task)"
track "eta unknown" --eta unknown
track "eta true" --eta true

#!/usr/bin/env bash
# How close soundbatch runs to the API's limits, release build, the sandbox and soundbatch
# as separate processes on loopback.
#  1. Sending against ways a server holds a limit: a token bucket (a small burst,
#     Retry-After in seconds), a 60-second sliding window, and a strict leaky bucket (nothing
#     early, no Retry-After) with the service's time behind it and with network jitter in
#     front of it; and, when nginx is installed, nginx's own limit_req (10 r/s, no burst, a
#     limiter nobody here wrote) in front of the sandbox. Prints the pace achieved as a share
#     of the limit and the share of requests answered 429. The bucket and the strict limiter
#     run SCALE times faster with latency scaled alike (a window cannot be: it is a minute).
#  2. Tracking: 120 jobs at 60/min, generations of about 25 s (lognormal, 15 to 45 s), the
#     documented eta of -1, 300-700 ms latency, looks limited to 200/min. Prints how long
#     after each task finished soundbatch saw it (mean and worst), looks per task, 429s,
#     and when the run ended against the last task's finish. Then the same with a true eta.
#   scripts/bench-limits.sh [SCALE] [JOBS]
#   ONLY=nginx scripts/bench-limits.sh       just the nginx case (five runs; NGINX_RUNS says how many)
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


# 1. Sending.
report() { # ledger per-minute name service-ms network-jitter-ms: the pace achieved and the 429s
    python3 - "$@" <<'PY'
import sqlite3, sys
from datetime import datetime
path, limit, name, service, network = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
db = sqlite3.connect(path)
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
ok = sorted(t(s) for (s,) in db.execute("SELECT started_at FROM attempts WHERE kind='submit' AND http_status=200"))
total, limited = db.execute("SELECT COUNT(*), SUM(http_status=429) FROM attempts WHERE kind='submit'").fetchone()
achieved = (len(ok) - 1) * 60 / (ok[-1] - ok[0]) / limit
line = (f"   {name:<30} {limit:>5.0f}/min  service {service} ms, network jitter {network:.0f} ms: "
        f"achieved {achieved:.3f} of the limit, {limited or 0} of {total} answered 429 ({100 * (limited or 0) / total:.1f}%)")
if network > 0 and "strict" in name:
    # Arrival times spread by the jitter: spacing that covers it is interval + jitter.
    interval = 60000 / limit
    bound = interval / (interval + network)
    line += f"\n   {'':<30} bound interval / (interval + arrival spread) = {bound:.3f}: {achieved / bound:.3f} of it"
print(line)
with open(sys.argv[6], "a") if len(sys.argv) > 6 else open("/dev/null", "w") as runs:
    runs.write(f"{achieved:.3f} {limited or 0} {total}\n")
PY
}

send() { # name per-minute service-ms service-jitter-ms network-jitter-ms sandbox-args...
    local name="$1" per_minute="$2" latency="$3" jitter="$4" network="$5"; shift 5
    start_sandbox --rate "$per_minute/min" --latency "${latency}ms" --latency-jitter "${jitter}ms" \
        --network-jitter "${network}ms" "$@"
    jobs_csv "$jobs" "$work/$name.csv"
    "$bin" run "$work/$name.csv" --base-url "$url" --rate "$per_minute/min" --quiet \
        --ledger "$work/$name.sqlite" >/dev/null 2>&1 || true
    stop_sandbox
    report "$work/$name.sqlite" "$per_minute" "$name" "$latency-$((latency + jitter))" "$network"
}

nginx_strict() { # per-second run: nginx limit_req (no burst, 429) in front of a sandbox with no limit
    local per_second="$1" run="$2" port name="nginx limit_req, no burst, run $2"
    start_sandbox --rate none --latency 30ms --latency-jitter 70ms
    port=$(free_port)
    mkdir -p "$work/nginx"
    cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $PWD/$work/nginx/nginx.pid;
error_log $PWD/$work/nginx/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $PWD/$work/nginx/body;
    proxy_temp_path $PWD/$work/nginx/proxy;
    fastcgi_temp_path $PWD/$work/nginx/fastcgi;
    uwsgi_temp_path $PWD/$work/nginx/uwsgi;
    scgi_temp_path $PWD/$work/nginx/scgi;
    limit_req_zone \$binary_remote_addr zone=submissions:1m rate=${per_second}r/s;
    limit_req_status 429;
    server {
        listen 127.0.0.1:$port;
        location /v1/sound_generator { limit_req zone=submissions; proxy_pass $url; }
        location / { proxy_pass $url; }
    }
}
CONF
    nginx -c "$PWD/$work/nginx/nginx.conf" -g 'daemon off;' &
    local nginx_pid=$!
    sleep 0.5
    jobs_csv "$jobs" "$work/nginx$run.csv"
    "$bin" run "$work/nginx$run.csv" --base-url "http://127.0.0.1:$port" --rate "$((per_second * 60))/min" --quiet \
        --ledger "$work/nginx$run.sqlite" >/dev/null 2>&1 || true
    kill "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true
    stop_sandbox
    report "$work/nginx$run.sqlite" "$((per_second * 60))" "$name" "30-100" 0 "$work/nginx-runs.txt"
}

nginx_runs() { # per-second: the nginx case NGINX_RUNS (5) times, each run's figures and the worst
    if ! command -v nginx >/dev/null; then
        echo "   (nginx is not installed: apt-get install nginx, for the strict limiter nobody here wrote)"
        return
    fi
    rm -f "$work/nginx-runs.txt"
    for run in $(seq 1 "${NGINX_RUNS:-5}"); do nginx_strict "$1" "$run"; done
    python3 - "$work/nginx-runs.txt" <<'PY'
import sys
runs = [line.split() for line in open(sys.argv[1])]
low = min(float(a) for a, _, _ in runs)
worst = max(int(l) / int(t) for _, l, t in runs)
print(f"   nginx, {len(runs)} runs: lowest {low:.3f} of the limit, at most {100 * worst:.1f}% answered 429 "
      f"(goal: each run >= 0.95 and <= 2%)")
PY
}

if [ "${ONLY:-}" = nginx ]; then
    echo "1. sending $jobs jobs through nginx limit_req at $scale r/s"
    nginx_runs "$scale"
    exit 0
fi

printf '1. sending %d jobs; bucket and strict %sx faster than 60/min, latency scaled alike\n' "$jobs" "$scale"
echo   "   (goals: bucket >= 0.99 and no 429; window >= 0.97 and no 429; strict with the service's time"
echo   "    behind the limiter >= 0.95 and <= 2% 429; with jitter in front, near its bound)"
fast=$((60 * scale))
send "bucket, Retry-After seconds" "$fast" $((300 / scale)) $((400 / scale)) $((200 / scale)) --limiter bucket --retry-after seconds
send "window, Retry-After seconds" 60 300 400 200 --limiter window --retry-after seconds
send "strict, service time behind" "$fast" $((300 / scale)) $((700 / scale)) 0 --limiter strict --retry-after none
send "strict, network jitter ahead" "$fast" $((300 / scale)) $((400 / scale)) $((200 / scale)) --limiter strict --retry-after none
nginx_runs "$scale"

# 2. Tracking.
track() { # name sandbox-args...
    local name="$1"; shift
    start_sandbox --rate 60/min --look-rate 200/min --latency 300ms --latency-jitter 400ms --network-jitter 100ms \
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
looks, limited = db.execute("SELECT COUNT(*), SUM(http_status=429) FROM attempts WHERE kind='look'").fetchone()
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

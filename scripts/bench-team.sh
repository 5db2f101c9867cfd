#!/usr/bin/env bash
# The team ledger's benchmark, release build, on a private PostgreSQL cluster with fsync on:
#  1. pace: one, two and three runners on one key and on two keys (each key limited to
#     RATE by the sandbox, --per-key): achieved submissions a minute against the combined
#     limit of the keys in use (goal at least 0.95) while every key is sending, and over
#     the whole run (the runners start a moment apart, and finish their last claims
#     alone), and the share answered 429;
#  2. cost: no limit, no latency: jobs a second with one, two and three runners, and the
#     database server's CPU per job claimed (its backends' CPU over the run), beside one
#     runner on a SQLite ledger in the same run (the baseline).
#   SOUNDBATCH_PG_FSYNC=on scripts/with-postgres.sh scripts/bench-team.sh [JOBS] [RATE] [JOBS_UNLIMITED]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:-240}"
rate="${2:-600}"
unlimited="${3:-3000}"
: "${SOUNDBATCH_TEST_POSTGRES:?run it under scripts/with-postgres.sh}"
work="bench-data/team"
rm -rf "$work"; mkdir -p "$work"
swift build -c release --product soundbatch >/dev/null
bin="$(swift build -c release --show-bin-path)/soundbatch"
source scripts/lib.sh
base="${SOUNDBATCH_TEST_POSTGRES%/*}"
data=$(sed -E 's/.* -D ([^ ]+).*/\1/' <<<"$SOUNDBATCH_TEST_PG_CTL")
postmaster=$(head -1 "$data/postmaster.pid")
ticks=$(getconf CLK_TCK)
# CPU seconds of the server's finished backends (they are the postmaster's children).
server_cpu() { awk -v t="$ticks" '{ print ($16 + $17) / t }' "/proc/$postmaster/stat"; }

new_ledger() { # name -> prints its URL, fed with the jobs of $2
    psql "$SOUNDBATCH_TEST_POSTGRES" -qc "CREATE DATABASE $1"
    "$bin" run "$2" --batch bench --dry-run --quiet --ledger "$base/$1" >/dev/null
    echo "$base/$1"
}

echo "1. pace: $jobs jobs a key in use, each key limited to $rate/min by the sandbox (--per-key, bucket), 30 ms latency"
for keys in 1 2; do
    jobs_csv $((jobs * keys)) "$work/pace.csv"
    for runners in 1 2 3; do
        start_sandbox --api-key key-1,key-2 --per-key --rate "$rate/min" --latency 30ms --latency-jitter 30ms
        ledger=$(new_ledger "pace_${keys}_${runners}" "$work/pace.csv")
        pids=()
        for r in $(seq "$runners"); do
            key="key-$(( (r - 1) % keys + 1 ))"
            MUSICGPT_API_KEY=$key "$bin" resume --batch bench --base-url "$url" --rate "$rate/min" --quiet \
                --ledger "$ledger" >"$work/pace-$keys-$runners-$r.log" 2>&1 &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do wait "$pid" || true; done
        used=$(( runners < keys ? runners : keys ))
        sandbox_get /_sandbox/tasks >"$work/tasks.json"
        sandbox_get /_sandbox/keys >"$work/keys.json"
        stop_sandbox
        python3 - "$work" "$keys" "$runners" "$used" "$rate" <<'PY'
import json, sys
from datetime import datetime
work, keys, runners, used, rate = sys.argv[1], *map(int, sys.argv[2:])
tasks = json.load(open(f"{work}/tasks.json"))
def at(task): return datetime.fromisoformat(task["created_at"].replace("Z", "+00:00")).timestamp()
times = sorted(at(t) for t in tasks)
# While every key in use is sending: from the last key's first request to the first key's
# last one (the runners start a moment apart, and one finishes its last claims alone).
by_key = {}
for t in tasks: by_key.setdefault(t["key"], []).append(at(t))
start, end = max(min(v) for v in by_key.values()), min(max(v) for v in by_key.values())
inside = [x for x in times if start <= x <= end]
steady = (len(inside) - 1) * 60 / (end - start)
whole = (len(times) - 1) * 60 / (times[-1] - times[0])
limit = rate * used
counts = json.load(open(f"{work}/keys.json"))
asked = sum(k["submissions"] for k in counts)
refused = sum(k["submissions_429"] for k in counts)
print(f"   {runners} runner{'s' if runners > 1 else ' '} on {keys} key{'s' if keys > 1 else ' '}: "
      f"{steady:6.1f}/min of {limit}/min = {steady / limit:.3f} (goal >= 0.95; whole run {whole / limit:.3f}); "
      f"429: {refused} of {asked} ({100 * refused / max(asked, 1):.1f}%)")
PY
    done
done

echo "2. cost: $unlimited jobs, no limit, no latency, --concurrency 16 a runner"
jobs_csv "$unlimited" "$work/cost.csv"
start_sandbox --rate none --look-rate none
"$bin" run "$work/cost.csv" --batch bench --dry-run --quiet --ledger "$work/cost.sqlite" >/dev/null
start=$(date +%s.%N)
MUSICGPT_API_KEY=k "$bin" resume --batch bench --base-url "$url" --rate 100000/s --concurrency 16 --quiet \
    --ledger "$work/cost.sqlite" >/dev/null 2>&1 || true
end=$(date +%s.%N)
sqlite_rate=$(echo "$unlimited / ($end - $start)" | bc -l)
printf '   SQLite, 1 runner (baseline): %.0f jobs/s\n' "$sqlite_rate"
for runners in 1 2 3; do
    ledger=$(new_ledger "cost_$runners" "$work/cost.csv")
    sleep 1
    cpu_before=$(server_cpu)
    start=$(date +%s.%N)
    pids=()
    for r in $(seq "$runners"); do
        MUSICGPT_API_KEY="k$r" "$bin" resume --batch bench --base-url "$url" --rate 100000/s --concurrency 16 \
            --quiet --ledger "$ledger" >/dev/null 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || true; done
    end=$(date +%s.%N)
    sleep 1  # the backends end with their connections
    cpu=$(echo "$(server_cpu) - $cpu_before" | bc -l)
    sent=$(psql "$ledger" -Atc "SELECT COUNT(*) FROM jobs WHERE state = 'submitted'")
    jobs_rate=$(echo "$sent / ($end - $start)" | bc -l)
    printf '   PostgreSQL, %d runner%s: %d jobs in %.1f s = %.0f jobs/s (%.2fx SQLite); server CPU %.2f ms per job claimed\n' \
        "$runners" "$([ "$runners" -gt 1 ] && echo s || echo ' ')" "$sent" "$(echo "$end - $start" | bc -l)" \
        "$jobs_rate" "$(echo "$jobs_rate / $sqlite_rate" | bc -l)" "$(echo "$cpu * 1000 / $sent" | bc -l)"
done
stop_sandbox

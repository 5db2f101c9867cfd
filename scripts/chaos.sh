#!/usr/bin/env bash
# The crash-and-fault harness: against a sandbox that fails, resets connections after
# taking requests, limits the rate and goes down once (connections refused for 3 s, then
# 503 pages for 2 s), it feeds a batch of unique prompts, kills the
# runner with SIGKILL at random moments, interrupts it once with SIGINT, resends the
# jobs in doubt on purpose, then compares the sandbox's record of accepted tasks with
# the ledger and prints one line:
#   jobs=500 submitted=N in_doubt_resent=A duplicates_paid=D lost=L kills=K
# It passes when every job is submitted or failed for good, lost=0, and no more tasks
# were paid twice than jobs in doubt resent on purpose.
#
# With CALLBACKS=1 the batch's callbacks go to `soundbatch webhook` on the same ledger, so
# each request's callback names it: jobs in doubt are settled by their callbacks, and the
# resends wait a doubt window for them. The line then says how many jobs were in doubt and
# how many were settled, and it passes when at most 5% of the jobs in doubt were paid twice.
#
#   scripts/chaos.sh [JOBS] [KILLS]        SEED=n replays a run; BIN=path picks the binary
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:-500}"
kills="${2:-10}"
seed="${SEED:-$(( $(date +%s) % 100000 ))}"
echo "chaos: seed=$seed (replay with SEED=$seed $0 $jobs $kills)"

if [ -z "${BIN:-}" ]; then
    swift build --product soundbatch >/dev/null
    BIN="$(swift build --show-bin-path)/soundbatch"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/soundbatch-chaos.XXXXXX")"
trap 'kill "$sandbox_pid" ${hook_pid:-} 2>/dev/null || true; rm -rf "$work"' EXIT
ledger="$work/ledger.sqlite"
export MUSICGPT_API_KEY=chaos-key

bin="$BIN"
source scripts/lib.sh
callbacks="${CALLBACKS:-0}"
# With callbacks, generations of about 2 s, so that they come while the harness runs.
start_sandbox --rate 1200/min --latency 40ms --latency-jitter 120ms \
    --failure-rate 0.1 --seed "$seed" --outage-after 4s --down-for 3s --error-pages-for 2s \
    $([ "$callbacks" = 1 ] && echo "--generation-time 2s")

jobs_csv "$jobs" "$work/chaos.csv"
"$BIN" run "$work/chaos.csv" --batch chaos --dry-run --quiet --ledger "$ledger"

send=(--batch chaos --base-url "$url" --rate 1200/min --concurrency 6 --timeout 2 --quiet --ledger "$ledger")
resend=(--resend-in-doubt)
if [ "$callbacks" = 1 ]; then
    start_receiver --ledger "$ledger"
    send+=(--webhook-url "$hook_url")
    resend+=(--doubt-window 30s)
fi
# The kill moments come from the seed, so a failure can be replayed.
moments=$(python3 -c "import random; r=random.Random($seed); print(' '.join(f'{r.uniform(0.2, 1.5):.2f}' for _ in range($kills)))")
count() { sqlite3 "$ledger" "SELECT COUNT(*) FROM jobs WHERE state = '$1'"; }

killed=0
for moment in $moments; do
    "$BIN" resume "${send[@]}" >/dev/null 2>&1 &
    pid=$!
    sleep "$moment"
    if kill -9 "$pid" 2>/dev/null; then killed=$((killed + 1)); fi
    wait "$pid" 2>/dev/null || true
done

# One interruption: in-flight requests finish, then exit 2.
"$BIN" resume "${send[@]}" >/dev/null 2>&1 &
pid=$!
sleep 0.5
kill -INT "$pid" 2>/dev/null || true
status=0; wait "$pid" || status=$?
if [ "$status" -ne 2 ] && [ "$status" -ne 0 ]; then echo "chaos: SIGINT run exited $status, not 2"; exit 1; fi

# Carry on until nothing is pending, then resend what is in doubt, on purpose, until
# nothing is left in doubt.
resent=0
for _ in $(seq 20); do
    "$BIN" resume "${send[@]}" >/dev/null 2>&1 || true
    held=$(count in_doubt)
    if [ "$(count pending)" -eq 0 ] && [ "$held" -eq 0 ]; then break; fi
    if [ "$held" -gt 0 ]; then
        # Only what the doubt window lets go is sent again (all of it, without callbacks).
        "$BIN" resume "${send[@]}" "${resend[@]}" >/dev/null 2>&1 || true
        resent=$((resent + held - $(count in_doubt)))
        [ "$callbacks" = 1 ] && sleep 3
    fi
done
# The last callbacks of tasks made in the last moments.
[ "$callbacks" = 1 ] && sleep 4

sandbox_get /_sandbox/tasks >"$work/tasks.json"
# A job "in doubt" failed after a request that got no answer (a reset, or a kill
# mid-request): the service may hold a task whose ID never reached soundbatch, and the
# ledger must say so in the job's own fact, request_in_doubt.
sqlite3 -json "$ledger" "SELECT prompt, state, task_id, request_in_doubt AS in_doubt, settled_by_callback AS settled,
    (SELECT COUNT(*) FROM attempts a WHERE a.job_id = jobs.id AND a.outcome IN ('no_answer', 'interrupted')) AS unanswered,
    (SELECT group_concat(task_id) FROM takes t WHERE t.job_id = jobs.id AND t.task_id IS NOT NULL) AS earlier
    FROM jobs" >"$work/jobs.json"
python3 - "$work/tasks.json" "$work/jobs.json" "$jobs" "$resent" "$killed" "$callbacks" <<'PY'
import collections, json, sys
tasks = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read().strip()
jobs = json.loads(text) if text else []
total, resent, kills, callbacks = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1"
per_prompt = collections.Counter(t["prompt"] for t in tasks)
accepted_ids = {t["task_id"] for t in tasks}
state = {j["prompt"]: j for j in jobs}
duplicates = sum(n - 1 for n in per_prompt.values())
# Lost: a task the service made for a job the ledger neither holds as submitted nor
# flags as in doubt, or a task ID in the ledger the service never gave. (A job in doubt
# that was resent and then refused for good ends failed, with its first task unknown:
# that is the ambiguity the ledger recorded, not a lost ID.)
# (With callbacks, the receiver records each task's end: a job with its task is submitted
# or completed, and a task kept as an earlier take is in the ledger too.)
with_task = ("submitted", "completed", "generation_failed")
known_ids = {j["task_id"] for j in jobs if j["task_id"]}
known_ids |= {i for j in jobs if j.get("earlier") for i in j["earlier"].split(",")}
lost = sum(1 for p in per_prompt
           if state.get(p, {}).get("state") not in with_task and not state.get(p, {}).get("in_doubt"))
lost += sum(1 for t in tasks if t["task_id"] not in known_ids and not state.get(t["prompt"], {}).get("in_doubt"))
lost += sum(1 for j in jobs if j["state"] in with_task and j["task_id"] not in accepted_ids)
submitted = sum(1 for j in jobs if j["state"] in with_task)
unfinished = sum(1 for j in jobs if j["state"] not in with_task + ("failed",))
line = f"jobs={total} submitted={submitted} in_doubt_resent={resent} duplicates_paid={duplicates} lost={lost} kills={kills}"
ok = lost == 0 and duplicates <= resent and unfinished == 0 and len(jobs) == total
if callbacks:
    sys.path.insert(0, "scripts")
    from doubt import callbacks_verdict
    more, met = callbacks_verdict(jobs, duplicates)
    line, ok = line + more, ok and met
print(line)
if not ok:
    print(f"chaos: FAILED (unfinished={unfinished})")
sys.exit(0 if ok else 1)
PY

#!/usr/bin/env bash
# The team harness: one batch on a PostgreSQL ledger, sent by three runner processes at
# once against a sandbox with two keys, each with its own limits (--per-key): two runners
# share key A, one has key B. Mid-run one runner on key A is killed with SIGKILL and
# started again (KILLS times), and PostgreSQL is stopped for a few seconds and started again. At the end
# the in-doubt jobs are resent on purpose. Then the sandbox's record is compared with the
# ledger, and one line printed:
#   team: jobs=N submitted=N in_doubt_resent=A duplicates_paid=D lost=L key_a_429=x% key_b_429=y%
# It passes when nothing is lost, no task ID is invented, nothing is paid twice but the
# jobs resent on purpose, and neither key had more than 2% of its requests refused (429).
#
# With CALLBACKS=1 the batch's callbacks go to one `soundbatch webhook` on the same
# ledger, so each request's callback names it: jobs in doubt are settled by their
# callbacks, and the resends wait a doubt window for them. The line then says how many
# jobs were in doubt and how many were settled, and it passes when at most 5% of the jobs
# in doubt were paid twice.
#
#   scripts/with-postgres.sh scripts/team-chaos.sh [JOBS] [RATE] [KILLS]   (RATE per key, N/min)
# KEEP=1 keeps its folder (logs, the sandbox's record) and says where.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:-300}"
rate="${2:-600/min}"
kills="${3:-1}"
: "${SOUNDBATCH_TEST_POSTGRES:?run it under scripts/with-postgres.sh}"
: "${SOUNDBATCH_TEST_PG_CTL:?run it under scripts/with-postgres.sh}"

if [ -z "${BIN:-}" ]; then
    swift build --product soundbatch >/dev/null
    BIN="$(swift build --show-bin-path)/soundbatch"
fi
bin="$BIN"
work="$(mktemp -d "${TMPDIR:-/tmp}/soundbatch-team.XXXXXX")"
runners=()
trap 'kill "${runners[@]}" "$sandbox_pid" ${hook_pid:-} 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
source scripts/lib.sh

database="team_$(date +%s)_$$"
psql "$SOUNDBATCH_TEST_POSTGRES" -qc "CREATE DATABASE $database"
export SOUNDBATCH_LEDGER="${SOUNDBATCH_TEST_POSTGRES%/*}/$database"
# Leases of a few seconds, so that a killed runner's jobs are taken on within the run.
export SOUNDBATCH_LEASE_SECONDS=4

start_sandbox --api-key key-a,key-b --per-key --rate "$rate" --look-rate 1200/min \
    --latency 30ms --latency-jitter 60ms --generation-time 3s --failure-rate 0.05 --seed 7
jobs_csv "$jobs" "$work/team.csv"
"$BIN" run "$work/team.csv" --batch team --dry-run --quiet

send=(--batch team --base-url "$url" --rate "$rate" --concurrency 6 --timeout 2 --quiet)
resend=(--resend-in-doubt)
callbacks="${CALLBACKS:-0}"
if [ "$callbacks" = 1 ]; then
    MUSICGPT_API_KEY=key-b start_receiver
    send+=(--webhook-url "$hook_url")
    resend+=(--doubt-window 30s)
fi
runner() { # key log -> $started
    MUSICGPT_API_KEY="$1" "$BIN" resume "${send[@]}" --wait >>"$work/$2.log" 2>&1 &
    started=$!
    runners+=("$started")
}
runner key-a a1; first=$started
runner key-a a2; second=$started
runner key-b b1; third=$started

# KILLS times (1 unless told), a runner on key A is killed mid-run and started again.
for kill in $(seq "$kills"); do
    sleep "$([ "$kill" = 1 ] && echo 3 || echo 1.5)"
    kill -9 "$second"
    wait "$second" 2>/dev/null || true
    sleep "$([ "$kill" = "$kills" ] && echo 2 || echo 0.5)"
    runner key-a a2; second=$started
done

sleep 2
# From a folder the postgres user may enter.
(cd / && $SOUNDBATCH_TEST_PG_CTL stop -m fast >/dev/null)
sleep 3
(cd / && $SOUNDBATCH_TEST_PG_CTL start -w >/dev/null)

for pid in "$first" "$second" "$third"; do wait "$pid" 2>/dev/null || true; done

# Once the killed runner's lease has run out, its requests in flight are in doubt: resend
# them on purpose, and carry on until every job has finished.
count() { psql "$SOUNDBATCH_LEDGER" -Atc "SELECT COUNT(*) FROM jobs WHERE state IN ($1)"; }
sleep "$SOUNDBATCH_LEASE_SECONDS"
resent=0
for _ in $(seq 20); do
    MUSICGPT_API_KEY=key-a "$BIN" resume "${send[@]}" --wait >>"$work/end.log" 2>&1 || true
    held=$(count "'in_doubt'")
    if [ "$(count "'pending', 'submitting', 'submitted'")" -eq 0 ] && [ "$held" -eq 0 ]; then break; fi
    if [ "$held" -gt 0 ]; then
        # Only what the doubt window lets go is sent again (all of it, without callbacks).
        MUSICGPT_API_KEY=key-b "$BIN" resume "${send[@]}" "${resend[@]}" --wait >>"$work/end.log" 2>&1 || true
        resent=$((resent + held - $(count "'in_doubt'")))
        [ "$callbacks" = 1 ] && sleep 3
    fi
done
# The last callbacks of tasks made in the last moments.
[ "$callbacks" = 1 ] && sleep 5

sandbox_get /_sandbox/tasks >"$work/tasks.json"
sandbox_get /_sandbox/keys >"$work/keys.json"
psql "$SOUNDBATCH_LEDGER" -Atc \
    "SELECT COALESCE(json_agg(json_build_object('prompt', prompt, 'state', state, 'task_id', task_id,
            'in_doubt', request_in_doubt, 'settled', settled_by_callback,
            'unanswered', (SELECT COUNT(*) FROM attempts a WHERE a.job_id = jobs.id
                           AND a.outcome IN ('no_answer', 'interrupted')))), '[]') FROM jobs" >"$work/jobs.json"
psql "$SOUNDBATCH_LEDGER" -Atc "SELECT COALESCE(json_agg(task_id), '[]') FROM takes" >"$work/takes.json"
python3 - "$work" "$jobs" "$resent" "$callbacks" <<'PY'
import collections, json, sys
work, total, resent, callbacks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
tasks = json.load(open(f"{work}/tasks.json"))
jobs = json.load(open(f"{work}/jobs.json"))
takes = set(json.load(open(f"{work}/takes.json")))
keys = {k["key"]: k for k in json.load(open(f"{work}/keys.json"))}
per_prompt = collections.Counter(t["prompt"] for t in tasks)
given = {t["task_id"] for t in tasks}
state = {j["prompt"]: j for j in jobs}
duplicates = sum(n - 1 for n in per_prompt.values())
# Lost: a task the service made for a job the ledger neither holds (finished, or in an
# earlier take) nor flags as in doubt; invented: a task ID the service never gave.
held = {j["task_id"] for j in jobs if j["task_id"]} | takes
lost = sum(1 for t in tasks if t["task_id"] not in held and not state.get(t["prompt"], {}).get("in_doubt"))
invented = sum(1 for t in held if t not in given)
finished = ("completed", "generation_failed", "failed", "remote_missing")
unfinished = sum(1 for j in jobs if j["state"] not in finished)
submitted = sum(1 for j in jobs if j["task_id"])
def refused(key):
    k = keys.get(key, {})
    asked = k.get("submissions", 0) + k.get("looks", 0)
    return 100 * (k.get("submissions_429", 0) + k.get("looks_429", 0)) / max(asked, 1), asked
(a, a_asked), (b, b_asked) = refused("key 1"), refused("key 2")
line = (f"team: jobs={total} submitted={submitted} in_doubt_resent={resent} duplicates_paid={duplicates} "
        f"lost={lost} invented={invented} key_a_429={a:.1f}% of {a_asked} key_b_429={b:.1f}% of {b_asked}")
ok = (lost == 0 and invented == 0 and duplicates <= resent and unfinished == 0 and len(jobs) == total
      and a <= 2 and b <= 2 and a_asked > 0 and b_asked > 0)
if callbacks:
    sys.path.insert(0, "scripts")
    from doubt import callbacks_verdict
    more, met = callbacks_verdict(jobs, duplicates)
    line, ok = line + more, ok and met
print(line)
if not ok:
    states = collections.Counter(j["state"] for j in jobs)
    print(f"team: FAILED (unfinished={unfinished}: {dict(states)}; folder {work})")
sys.exit(0 if ok else 1)
PY

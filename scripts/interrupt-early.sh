#!/usr/bin/env bash
# Ctrl-C in a run's first instants, as a script that starts soundbatch and stops it at once
# sends it (a CI job cancelled, `timeout -s INT`, a wrapper's own Ctrl-C), release build:
# RUNS runs of `run --wait --download` (10 jobs) against a sandbox 300-700 ms away, four at a
# time, each sent SIGINT at a random moment within its first 50 ms. Prints how each ended;
# fails if one did not end within 2 s of its signal (a signal lost: the run goes on to its end).
#   scripts/interrupt-early.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-200}"
work="bench-data/interrupt-early"
rm -rf "$work"; mkdir -p "$work"
swift build -c release --product soundbatch >/dev/null 2>&1
bin="$(swift build -c release --show-bin-path 2>/dev/null)/soundbatch"
source scripts/lib.sh
start_sandbox --rate none --look-rate none --latency 300ms --latency-jitter 400ms --generation-time 2s
trap stop_sandbox EXIT
python3 - "$bin" "$url" "$work" "$runs" <<'PY'
import concurrent.futures, os, random, signal, sqlite3, subprocess, sys, time
binary, url, work, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def run(index):
    name = f"{work}/r{index}"
    with open(f"{name}.csv", "w") as out:
        out.write("id,prompt,audio_length\n" + "".join(f"j{i},sound {index} {i},2\n" for i in range(10)))
    child = subprocess.Popen(
        [binary, "run", f"{name}.csv", "--batch", "b", "--base-url", url, "--rate", "600/min", "--wait",
         "--download", f"{name}-sounds", "--ledger", f"{name}.sqlite"],
        env=dict(os.environ, MUSICGPT_API_KEY="bench-key"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(random.uniform(0, 0.05))
    signalled = time.monotonic()
    child.send_signal(signal.SIGINT)
    try:
        _, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        return ("lost", 30.0, "")
    took = time.monotonic() - signalled
    states = set()
    try:
        states = {s for (s,) in sqlite3.connect(f"{name}.sqlite").execute("SELECT state FROM jobs")}
    except sqlite3.Error:
        pass
    nothing_sent = b"before any request was sent" in err
    end = "killed by SIGINT before main" if child.returncode == -signal.SIGINT else f"exit {child.returncode}"
    if nothing_sent:
        end += ", nothing sent"
    return (end if took < 2 else "lost", took, ",".join(sorted(states)))

with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    results = list(pool.map(run, range(runs)))
ends = {}
for end, _, _ in results:
    ends[end] = ends.get(end, 0) + 1
slowest = max(took for _, took, _ in results)
print(f"{runs} runs, each sent SIGINT within its first 50 ms (release build):")
for end, count in sorted(ends.items(), key=lambda kv: -kv[1]):
    print(f"  {count:4d}  {end}")
print(f"  slowest stop after its signal: {slowest:.2f} s (limit 2 s)")
sys.exit(1 if "lost" in ends or any(e.startswith("exit") and not e.startswith("exit 2") for e in ends) else 0)
PY

# Shared by the scripts: a free port, the sandbox started, asked and stopped, a callback
# receiver started, a CSV of jobs. Sourced; start_sandbox and start_receiver need $bin (the
# soundbatch executable) and $work (a folder).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_sandbox() { # sandbox args... -> sets sandbox_pid and url
    local port; port=$(free_port)
    "$bin" sandbox --port "$port" "$@" >"$work/sandbox.log" 2>&1 &
    sandbox_pid=$!
    url="http://127.0.0.1:$port"
    wait_listening "$work/sandbox.log" "the sandbox"
}

start_receiver() { # webhook args... -> sets hook_pid and hook_url: `soundbatch webhook` on a free port
    local port; port=$(free_port)
    "$bin" webhook --listen "127.0.0.1:$port" "$@" >"$work/webhook.log" 2>&1 &
    hook_pid=$!
    hook_url="http://127.0.0.1:$port/hook"
    wait_listening "$work/webhook.log" "the callback receiver"
}

wait_listening() { # log what: until the log says it is listening, for up to 10 s
    for _ in $(seq 200); do
        grep -q "listening" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "$2 did not start" >&2; exit 1
}

stop_sandbox() { kill "$sandbox_pid"; wait "$sandbox_pid" 2>/dev/null || true; }

sandbox_get() { # path: what the sandbox answers at it (/_sandbox/tasks, /_sandbox/keys)
    python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('$url$1').read().decode())"
}

jobs_csv() { # count path [seconds]: an id and a distinct prompt a row (and an audio_length)
    python3 - "$1" "$2" "${3:-}" <<'PY'
import sys
n, path, seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(path, "w") as out:
    out.write("id,prompt" + (",audio_length" if seconds else "") + "\n")
    for i in range(n):
        out.write(f"s{i},benchmark sound {i}" + (f",{seconds}" if seconds else "") + "\n")
PY
}

export_sources() { # count folder: sounds of 3.5 to 4.5 s, pink noise and a tone each its own, as 192 kb/s MP3
    if [ "$(ls "$2" | wc -l)" -lt "$1" ]; then
        seq 0 $(($1 - 1)) | xargs -P "$(nproc)" -I{} sh -c '
            n={}; d=$(echo "3.5 + ($n % 11) / 10" | bc -l)
            ffmpeg -nostdin -loglevel error -y -f lavfi -i "anoisesrc=d=$d:c=pink:seed=$n:a=0.$((n % 7 + 1))" \
                -f lavfi -i "sine=f=$((200 + n % 800)):d=$d" -filter_complex "amix=inputs=2,aformat=channel_layouts=stereo" \
                -ar 44100 -b:a 192k "'"$2"'/s$n.mp3"'
    fi
}

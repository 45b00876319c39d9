# Helpers for the benchmark scripts that start a server: source this file.

# await_server NAME PID LOG CHECK...: waits up to 10 s until the command
# CHECK... succeeds; exits (status 2) with the log's tail if the server with
# pid PID dies first or the time runs out. NAME prefixes the messages.
await_server() {
    local name=$1 pid=$2 log=$3
    shift 3
    for _ in $(seq 100); do
        if ! kill -0 "$pid" 2> /dev/null; then
            echo "$name: server exited at start:" >&2
            tail -n 20 "$log" >&2
            exit 2
        fi
        "$@" 2> /dev/null && return 0
        sleep 0.1
    done
    echo "$name: server did not answer within 10 s" >&2
    tail -n 20 "$log" >&2
    exit 2
}

# stop_pid PID: ends a process this script started (TERM, then KILL after
# 5 s) and reaps it. Does nothing for an empty or finished PID.
stop_pid() {
    local pid=$1
    [[ -n $pid ]] && kill -0 "$pid" 2> /dev/null || return 0
    kill "$pid" 2> /dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
}

# shellcheck shell=bash
# Process helpers shared by the scripts. Source this file.

# proc_stop PID [GRACE_SECONDS] [SIGNAL]: sends SIGNAL (default TERM) to PID, waits up
# to GRACE_SECONDS (default 10) for it to exit, then sends KILL. PID must be a child
# of this shell (it is reaped with `wait`). No-op when PID is empty or already gone.
# A negative PID (-PGID) signals the whole process group; the group leader is waited for.
proc_stop() {
    local pid=${1:-} grace=${2:-10} sig=${3:-TERM} leader i
    [[ -n $pid ]] || return 0
    leader=${pid#-}
    if kill -0 "$leader" 2>/dev/null; then
        kill "-$sig" -- "$pid" 2>/dev/null || true
        for ((i = 0; i < grace * 10; i++)); do
            kill -0 "$leader" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$leader" 2>/dev/null; then
            echo "proc: $leader did not exit within ${grace}s of SIG$sig; killing it" >&2
            kill -KILL -- "$pid" 2>/dev/null || true
        fi
    fi
    wait "$leader" 2>/dev/null || true
}

# proc_on_exit CMD...: runs CMD... RC (RC: the script's exit status) once when the script
# exits. INT, TERM and HUP are told through the script's log function, passed on to the
# process group of proc_run_group, and end the script with 128 + the signal's number.
proc_on_exit() {
    PROC_CLEANUP=("$@")
    trap _proc_exit EXIT
    trap '_proc_signal INT' INT
    trap '_proc_signal TERM' TERM
    trap '_proc_signal HUP' HUP
}
# shellcheck disable=SC2317  # invoked from traps
_proc_exit() {
    local rc=$?
    trap - EXIT INT TERM HUP
    "${PROC_CLEANUP[@]}" "$rc"
    exit "$rc"
}
# shellcheck disable=SC2317  # invoked from traps
_proc_signal() {
    log "received SIG$1, stopping"
    [[ -z $PROC_GROUP_PID ]] || kill "-$1" -- "-$PROC_GROUP_PID" 2>/dev/null || true
    exit $((128 + $(kill -l "$1")))
}

# proc_run_group CMD...: CMD (stdin /dev/null) in a process group of its own, so that the
# whole tree it starts can be stopped (proc_stop "-$PROC_GROUP_PID"); returns its status.
PROC_GROUP_PID=""
proc_run_group() {
    set -m
    "$@" </dev/null &
    PROC_GROUP_PID=$!
    set +m
    local rc=0
    wait "$PROC_GROUP_PID" || rc=$?
    PROC_GROUP_PID=""
    return "$rc"
}

# redis_wait_ready PORT PID [TIMEOUT_SECONDS] [LOGFILE]: waits until the redis-server
# with process id PID answers PING on 127.0.0.1:PORT. Fails (returns 1) with a message
# when it exits early or does not answer within TIMEOUT_SECONDS (default 10).
redis_wait_ready() {
    local port=$1 pid=$2 timeout=${3:-10} logfile=${4:-} i reply
    for ((i = 0; i < timeout * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "redis-server (port $port) exited during start-up" >&2
            _redis_show_log "$logfile"
            return 1
        fi
        reply=$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) || true
        if [[ $reply == PONG ]]; then
            return 0
        fi
        sleep 0.1
    done
    echo "redis-server (port $port) did not answer PING within ${timeout}s" >&2
    _redis_show_log "$logfile"
    return 1
}

_redis_show_log() {
    if [[ -n ${1:-} && -s $1 ]]; then
        echo "--- last lines of $1 ---" >&2
        tail -n 20 -- "$1" >&2
    fi
}

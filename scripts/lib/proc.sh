# shellcheck shell=bash
# Process helpers shared by scripts/test, scripts/run and scripts/bench. Source this file.

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

# shellcheck shell=bash
# A throw-away Redis and sessiond on free loopback ports, for scripts/test-contract and
# scripts/fuzz. Source scripts/lib/proc.sh first, then this file, then:
#
#     instance_start_redis DIR                  # sets INSTANCE_REDIS_PID, INSTANCE_REDIS_PORT, INSTANCE_REDIS_URL
#     instance_make_keys                        # sets and exports SESSIOND_READER_KEY, SESSIOND_APP_KEY, SESSIOND_ADMIN_KEY
#     instance_start_sessiond BINARY REDIS_URL LOG [VAR=VALUE...]
#                                               # sets INSTANCE_SESSIOND_PID, INSTANCE_SESSIOND_URL, INSTANCE_KEY_PREFIX
#     instance_stop                             # stops what this shell started (call it from an EXIT trap)
#
# Keys are generated (32 base64url characters each, never printed) and reach sessiond only
# through its environment. Each sessiond gets its own SESSIOND_KEY_PREFIX, so a shared Redis is
# safe. Other SESSIOND_* settings of the caller's environment are dropped (defaults apply);
# extra VAR=VALUE arguments are put in sessiond's environment (e.g. SESSIOND_IDLE_TIMEOUT=60).

# shellcheck disable=SC2034  # read by the scripts that source this file
INSTANCE_REDIS_PID=""
# shellcheck disable=SC2034
INSTANCE_REDIS_PORT=""
INSTANCE_REDIS_URL=""
INSTANCE_SESSIOND_PID=""
INSTANCE_SESSIOND_URL=""
INSTANCE_KEY_PREFIX=""
# Every sessiond this shell started (a script may start more than one).
INSTANCE_SESSIOND_PIDS=()

# instance_pick_port: prints a loopback TCP port that is free right now (a start-up race is
# handled by the callers, which retry with another port).
instance_pick_port() {
    if command -v python3 >/dev/null 2>&1 && python3 - <<'PY' 2>/dev/null; then
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
        return 0
    fi
    local port
    while :; do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
}

# instance_start_redis DIR: a redis-server without persistence in DIR, on a free port.
instance_start_redis() {
    instance_start_redis_with "$1"
}

# _instance_key: 24 random bytes as 32 base64url characters (printable, no space or comma).
_instance_key() {
    head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

instance_make_keys() {
    SESSIOND_READER_KEY=$(_instance_key)
    SESSIOND_APP_KEY=$(_instance_key)
    SESSIOND_ADMIN_KEY=$(_instance_key)
    export SESSIOND_READER_KEY SESSIOND_APP_KEY SESSIOND_ADMIN_KEY
}

# instance_start_sessiond BINARY REDIS_URL LOG [VAR=VALUE...]: starts sessiond on a free
# loopback port with the keys of instance_make_keys (made now if missing) and a fresh key
# prefix, and waits until /readyz answers 200. Its stdout and stderr (JSON log lines, which
# never hold a token or a key) go to LOG.
instance_start_sessiond() {
    local binary=$1 redis_url=$2 log=$3 attempt port i code
    shift 3
    [[ -x $binary ]] || { echo "sessiond-instance: $binary is not an executable" >&2; return 1; }
    [[ -n ${SESSIOND_READER_KEY:-} && -n ${SESSIOND_APP_KEY:-} && -n ${SESSIOND_ADMIN_KEY:-} ]] || instance_make_keys
    INSTANCE_KEY_PREFIX="contract-$$-$RANDOM:"
    for attempt in 1 2 3 4 5; do
        port=$(instance_pick_port)
        env -u SESSIOND_IDLE_TIMEOUT -u SESSIOND_ABSOLUTE_TIMEOUT -u SESSIOND_MAX_SESSIONS_PER_USER \
            -u SESSIOND_MAX_DATA_BYTES -u SESSIOND_COOKIE_NAME -u SESSIOND_COOKIE_SAMESITE -u SESSIOND_LOG_LEVEL \
            "$@" \
            SESSIOND_HOST=127.0.0.1 SESSIOND_PORT="$port" SESSIOND_REDIS_URL="$redis_url" \
            SESSIOND_REDIS_SENTINELS= SESSIOND_REDIS_MASTER_NAME= \
            SESSIOND_KEY_PREFIX="$INSTANCE_KEY_PREFIX" \
            SESSIOND_API_KEYS="reader:$SESSIOND_READER_KEY,app:$SESSIOND_APP_KEY,admin:$SESSIOND_ADMIN_KEY" \
            "$binary" </dev/null >>"$log" 2>&1 &
        INSTANCE_SESSIOND_PID=$!
        INSTANCE_SESSIOND_PIDS+=("$INSTANCE_SESSIOND_PID")
        INSTANCE_SESSIOND_URL="http://127.0.0.1:$port"
        for ((i = 0; i < 150; i++)); do
            if ! kill -0 "$INSTANCE_SESSIOND_PID" 2>/dev/null; then
                break
            fi
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$INSTANCE_SESSIOND_URL/readyz" 2>/dev/null) || true
            if [[ $code == 200 ]]; then
                return 0
            fi
            sleep 0.1
        done
        proc_stop "$INSTANCE_SESSIOND_PID" 5 TERM
        echo "sessiond-instance: sessiond did not become ready on port $port (attempt $attempt of 5); last log lines:" >&2
        tail -n 5 -- "$log" >&2 || true
    done
    INSTANCE_SESSIOND_PID=""
    INSTANCE_SESSIOND_URL=""
    return 1
}

# instance_sessiond_alive: true while the last sessiond started runs.
instance_sessiond_alive() {
    [[ -n $INSTANCE_SESSIOND_PID ]] && kill -0 "$INSTANCE_SESSIOND_PID" 2>/dev/null
}

# instance_log_has_keys LOG: true (and says so, without the key) when an API key is in LOG.
instance_log_has_keys() {
    local log=$1 role key found=1
    for role in READER APP ADMIN; do
        key="SESSIOND_${role}_KEY"
        key=${!key:-}
        if [[ -n $key ]] && grep -qF -- "$key" "$log" 2>/dev/null; then
            echo "sessiond-instance: the ${role,,} API key appears in $log" >&2
            found=0
        fi
    done
    return "$found"
}

instance_stop() {
    local pid
    for pid in "${INSTANCE_SESSIOND_PIDS[@]}"; do
        proc_stop "$pid" 10 TERM
    done
    INSTANCE_SESSIOND_PIDS=()
    INSTANCE_SESSIOND_PID=""
    proc_stop "$INSTANCE_REDIS_PID" 10 TERM
    INSTANCE_REDIS_PID=""
}

# instance_start_redis_with DIR [ARG...]: like instance_start_redis (a redis-server in DIR on a
# free loopback port, same INSTANCE_REDIS_* variables), with the extra redis-server arguments
# ARG... after the defaults, so they win (e.g. --appendonly yes --appendfsync always). The full
# command line is written NUL-separated to DIR/redis.argv, so a test that kills this Redis can
# start it again exactly as it was (same port, same data). instance_stop stops only the last
# Redis started: a script that starts several keeps the other pids and stops them itself.
instance_start_redis_with() {
    local dir=$1 attempt port
    shift
    local -a argv
    mkdir -p -- "$dir"
    for attempt in 1 2 3 4 5; do
        port=$(instance_pick_port)
        argv=(redis-server --port "$port" --bind 127.0.0.1 --dir "$dir"
            --save '' --appendonly no --daemonize no --logfile "$dir/redis.log" "$@")
        printf '%s\0' "${argv[@]}" >"$dir/redis.argv"
        "${argv[@]}" </dev/null >/dev/null 2>&1 &
        INSTANCE_REDIS_PID=$!
        if redis_wait_ready "$port" "$INSTANCE_REDIS_PID" 10 "$dir/redis.log"; then
            INSTANCE_REDIS_PORT=$port
            INSTANCE_REDIS_URL="redis://127.0.0.1:$port/0"
            return 0
        fi
        proc_stop "$INSTANCE_REDIS_PID" 5 TERM
        INSTANCE_REDIS_PID=""
        echo "sessiond-instance: could not start redis-server on port $port (attempt $attempt of 5)" >&2
    done
    return 1
}

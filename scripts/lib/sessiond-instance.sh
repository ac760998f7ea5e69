# shellcheck shell=bash disable=SC2034  # the INSTANCE_* variables are read by the scripts
# The test scripts' launcher: free loopback ports, a throw-away Redis and sessiond (Redis Cluster
# and Sentinel set-ups come from scripts/redis-topology). Source scripts/lib/proc.sh first, then
# this file, then:
#
#     instance_pick_port                        # prints a free loopback port
#     instance_on_free_port NAME START [ARG...] # START PORT ARG... on a free port, retried
#     instance_wait_http URL PID SECONDS        # until URL answers 200
#     instance_start_redis DIR [ARG...]         # sets INSTANCE_REDIS_PID, INSTANCE_REDIS_PORT, INSTANCE_REDIS_URL
#     instance_use_test_redis DIR               # sets INSTANCE_REDIS_URL: SESSIOND_TEST_REDIS_URL, or instance_start_redis DIR
#     instance_make_keys                        # sets and exports SESSIOND_READER_KEY, SESSIOND_APP_KEY, SESSIOND_ADMIN_KEY
#     instance_start_sessiond BINARY REDIS_URL LOG [VAR=VALUE...]
#                                               # sets INSTANCE_SESSIOND_PID, INSTANCE_SESSIOND_URL, INSTANCE_KEY_PREFIX
#     instance_stop_sessiond PID                # stops one of them before the end
#     instance_stop                             # stops what this shell started (call it from the cleanup)
#     proc_on_exit instance_cleanup DIR         # the usual cleanup, DIR a temporary directory
#
# Keys are generated (32 base64url characters each, never printed) and reach sessiond only
# through its environment. Each sessiond gets its own SESSIOND_KEY_PREFIX unless a
# SESSIOND_KEY_PREFIX=... argument names one, so a shared Redis is safe. The SESSIOND_* settings
# of the caller's environment are dropped (defaults apply); extra VAR=VALUE arguments are put in
# sessiond's environment (e.g. SESSIOND_IDLE_TIMEOUT=60). Every process starts under the command
# in INSTANCE_RUN_UNDER, when set (scripts/bench pins its servers with taskset from the start).

INSTANCE_RUN_UNDER=()
# The server instance_start_redis runs: redis-server, or another with its flags (valkey-server).
INSTANCE_REDIS_SERVER=${INSTANCE_REDIS_SERVER:-redis-server}
INSTANCE_REDIS_PID=""
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
        # A refused connection means nobody listens there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
}

# instance_on_free_port NAME START [ARG...]: runs START PORT ARG... with a free loopback PORT
# until it succeeds, at most 5 times (another process may take the port before START binds it).
# START stops what it started when it fails.
instance_on_free_port() {
    local name=$1 start=$2 attempt port
    shift 2
    for attempt in 1 2 3 4 5; do
        port=$(instance_pick_port)
        "$start" "$port" "$@" && return 0
        echo "sessiond-instance: could not start $name on port $port (attempt $attempt of 5)" >&2
    done
    return 1
}

# instance_wait_http URL PID SECONDS: waits until URL answers 200 while PID runs; fails when PID
# exits or SECONDS pass first.
instance_wait_http() {
    local url=$1 pid=$2 seconds=$3 i code
    for ((i = 0; i < seconds * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || true
        [[ $code == 200 ]] && return 0
        sleep 0.1
    done
    echo "sessiond-instance: $url did not answer 200 within ${seconds}s" >&2
    return 1
}

# instance_start_redis DIR [ARG...]: a redis-server without persistence in DIR (its log in
# DIR/redis.log) on a free loopback port, with the extra redis-server arguments ARG... after the
# defaults, so they win (e.g. --appendonly yes --appendfsync always). The full command line is
# written NUL-separated to DIR/redis.argv, so a test that kills this Redis can start it again
# exactly as it was (same port, same data). instance_stop stops only the last Redis started: a
# script that starts several keeps the other pids and stops them itself.
instance_start_redis() {
    mkdir -p -- "$1"
    instance_on_free_port redis-server _instance_try_redis "$@"
}

# _instance_try_redis PORT DIR [ARG...]: one attempt of instance_start_redis.
_instance_try_redis() {
    local port=$1 dir=$2
    shift 2
    local -a argv=("${INSTANCE_RUN_UNDER[@]}" "$INSTANCE_REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$dir"
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
    return 1
}

# instance_use_test_redis DIR: the Redis at SESSIOND_TEST_REDIS_URL when set (INSTANCE_REDIS_PID
# stays empty: it is not ours to stop), else instance_start_redis DIR. Says which through the
# script's log function.
instance_use_test_redis() {
    if [[ -n ${SESSIOND_TEST_REDIS_URL:-} ]]; then
        INSTANCE_REDIS_URL=$SESSIOND_TEST_REDIS_URL
        log "using the Redis at SESSIOND_TEST_REDIS_URL"
    else
        instance_start_redis "$1" || return 1
        log "throw-away redis-server (pid $INSTANCE_REDIS_PID) at $INSTANCE_REDIS_URL"
    fi
}

# instance_new_key: 24 random bytes as 32 base64url characters (printable, no space or comma).
instance_new_key() {
    head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

# instance_make_keys: a new key for each role, exported for the harnesses the script runs.
instance_make_keys() {
    SESSIOND_READER_KEY=$(instance_new_key)
    SESSIOND_APP_KEY=$(instance_new_key)
    SESSIOND_ADMIN_KEY=$(instance_new_key)
    export SESSIOND_READER_KEY SESSIOND_APP_KEY SESSIOND_ADMIN_KEY
}

# instance_start_sessiond BINARY REDIS_URL LOG [VAR=VALUE...]: starts sessiond on a free
# loopback port with the keys of instance_make_keys (made now if missing), and waits until
# /readyz answers 200. Its stdout and stderr (JSON log lines, which never hold a token or a
# key) go to LOG, afresh for each attempt.
instance_start_sessiond() {
    local binary=$1 setting
    [[ -x $binary ]] || { echo "sessiond-instance: $binary is not an executable" >&2; return 1; }
    [[ -n ${SESSIOND_READER_KEY:-} && -n ${SESSIOND_APP_KEY:-} && -n ${SESSIOND_ADMIN_KEY:-} ]] || instance_make_keys
    INSTANCE_KEY_PREFIX="contract-$$-$RANDOM:"
    for setting in "${@:4}"; do
        [[ $setting != SESSIOND_KEY_PREFIX=* ]] || INSTANCE_KEY_PREFIX=${setting#*=}
    done
    instance_on_free_port sessiond _instance_try_sessiond "$@"
}

# _instance_try_sessiond PORT BINARY REDIS_URL LOG [VAR=VALUE...]: one attempt of
# instance_start_sessiond.
_instance_try_sessiond() {
    local port=$1 binary=$2 redis_url=$3 log=$4 setting
    shift 4
    local -a drop_settings=()
    for setting in $(compgen -e SESSIOND_); do
        drop_settings+=(-u "$setting")
    done
    env "${drop_settings[@]}" "$@" \
        SESSIOND_HOST=127.0.0.1 SESSIOND_PORT="$port" SESSIOND_REDIS_URL="$redis_url" \
        SESSIOND_KEY_PREFIX="$INSTANCE_KEY_PREFIX" \
        SESSIOND_API_KEYS="reader:$SESSIOND_READER_KEY,app:$SESSIOND_APP_KEY,admin:$SESSIOND_ADMIN_KEY" \
        "${INSTANCE_RUN_UNDER[@]}" "$binary" </dev/null >"$log" 2>&1 &
    INSTANCE_SESSIOND_PID=$!
    INSTANCE_SESSIOND_PIDS+=("$INSTANCE_SESSIOND_PID")
    INSTANCE_SESSIOND_URL="http://127.0.0.1:$port"
    instance_wait_http "$INSTANCE_SESSIOND_URL/readyz" "$INSTANCE_SESSIOND_PID" 15 && return 0
    proc_stop "$INSTANCE_SESSIOND_PID" 5 TERM
    INSTANCE_SESSIOND_PID=""
    INSTANCE_SESSIOND_URL=""
    echo "sessiond-instance: last lines of $log:" >&2
    tail -n 5 -- "$log" >&2 || true
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

# instance_stop_sessiond PID: stops one sessiond that instance_start_sessiond started.
instance_stop_sessiond() {
    local pid remaining=()
    proc_stop "$1" 10 TERM
    for pid in "${INSTANCE_SESSIOND_PIDS[@]}"; do
        [[ $pid == "$1" ]] || remaining+=("$pid")
    done
    INSTANCE_SESSIOND_PIDS=("${remaining[@]}")
    if [[ $INSTANCE_SESSIOND_PID == "$1" ]]; then
        INSTANCE_SESSIOND_PID=""
        INSTANCE_SESSIOND_URL=""
    fi
}

instance_stop() {
    while ((${#INSTANCE_SESSIOND_PIDS[@]} > 0)); do
        instance_stop_sessiond "${INSTANCE_SESSIOND_PIDS[0]}"
    done
    proc_stop "$INSTANCE_REDIS_PID" 10 TERM
    INSTANCE_REDIS_PID=""
}

# instance_cleanup DIR RC: stops the process group of proc_run_group and what instance_stop
# stops, shows the tail of DIR/sessiond.log when RC (the script's exit status) is not 0, and
# removes DIR.
instance_cleanup() {
    [[ -z $PROC_GROUP_PID ]] || proc_stop "-$PROC_GROUP_PID" 30 TERM
    instance_stop
    if (($2 != 0)) && [[ -s $1/sessiond.log ]]; then
        log "last lines of the sessiond log:"
        tail -n 20 -- "$1/sessiond.log" >&2 || true
    fi
    rm -rf -- "$1"
}

#!/usr/bin/env bash
# Sockeye benchmarks, side by side with the Node reference testbed and the limit server.
#
#   bench/run.sh                 # the default run: every scenario, 3 rounds, under 10 minutes
#   bench/run.sh --quick         # a small smoke run (1 round, small sizes)
#   ROUNDS=5 SERVERS="sockeye node" SCENARIOS="echo fanout" bench/run.sh
#
# Builds in release, starts each server fresh for each scenario and round (pinned to
# SERVER_CPU), drives it with the load generator (pinned to LOADGEN_CPU), then prints a table of
# medians and ratios (Sockeye/Node, Sockeye/limit) and writes bench/results/latest.json (with
# every run), latest.jsonl (the raw lines) and latest.md (the table).
#
# Environment: ROUNDS (3), SERVERS ("sockeye node limit"), SCENARIOS (all below), SERVER_CPU (0),
# LOADGEN_CPU (1), BENCH_PORT (first port tried, 3700), REDIS_SERVER (redis-server),
# BIG_ROUNDS (rounds of connect-max, 1), NO_BUILD=1 (use the binaries already built).
#
# Scenarios (the load generator's options are in bench/src/bin/loadgen.rs):
#   connect          10 000 WebSocket clients at 2 000/s, held: latency, server KiB/connection
#   connect-polling  1 000 clients at 1 000/s, polling then upgrade (not on the limit server)
#   echo             100 clients looping emit-with-ack for 5 s
#   fanout           1 000 receivers, one sender: 1 000 `broadcast`, unpaced
#   fanout-paced     1 000 receivers, one sender: `broadcast` at 50/s for 5 s
#   rooms            1 000 clients in 10 rooms, one sender: `to` each room, 300 rounds
#   cluster-fanout   1 000 receivers spread over two nodes sharing a Redis, 200 `broadcast`
#   connect-max      50 000 clients (fewer if the file limit forbids), one round
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h | --help)
            sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "run.sh: unknown argument $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

ROUNDS=${ROUNDS:-$([ "$QUICK" = 1 ] && echo 1 || echo 3)}
BIG_ROUNDS=${BIG_ROUNDS:-1}
SERVERS=${SERVERS:-"sockeye node limit"}
SCENARIOS=${SCENARIOS:-"connect connect-polling echo fanout fanout-paced rooms cluster-fanout connect-max"}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
PORT=${BENCH_PORT:-3700}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
RESULTS="$ROOT/bench/results"
LOGS="$RESULTS/logs"
JSONL="$RESULTS/latest.jsonl"
START_TIME=$(date +%s)

log() { printf '[%4ss] %s\n' "$(($(date +%s) - START_TIME))" "$*" >&2; }

# --- build and prerequisites ----------------------------------------------------------------

if [ "${NO_BUILD:-0}" = 1 ]; then
    log "NO_BUILD=1: using the binaries already built"
else
    log "building (release)"
    cargo build --release -q -p conformance --bin testbed -p bench --bin loadgen --bin limit
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
TARGET_DIR=${TARGET_DIR:-$ROOT/target}
LOADGEN="$TARGET_DIR/release/loadgen"
TESTBED="$TARGET_DIR/release/testbed"
LIMIT="$TARGET_DIR/release/limit"

if [[ " $SERVERS " == *" node "* ]] && [ ! -d conformance/node_modules/socket.io ]; then
    log "installing the Node testbed's packages (npm ci)"
    (cd conformance && npm ci --no-audit --no-fund --loglevel=error)
fi

PIN_SERVER=()
PIN_LOADGEN=()
if command -v taskset > /dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c "$SERVER_CPU")
    PIN_LOADGEN=(taskset -c "$LOADGEN_CPU")
else
    log "warning: no taskset or a single core: server and load generator are not pinned"
fi

# Every connection is a file descriptor on both sides: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2> /dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576

mkdir -p "$RESULTS" "$LOGS"
: > "$JSONL"

# --- servers --------------------------------------------------------------------------------

SERVER_PIDS=()
cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill -TERM "$pid" 2> /dev/null || true
    done
    [ -n "${REDIS_PID:-}" ] && kill -TERM "$REDIS_PID" 2> /dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server KIND PORT [VAR=value...]: starts one server and waits for its "listening on" line;
# its pid is then in STARTED_PID. On failure prints the reason to stderr and returns 1.
STARTED_PID=""
start_server() {
    local kind=$1 port=$2
    shift 2
    local logfile="$LOGS/$kind-$port.log"
    local cmd
    case "$kind" in
        sockeye) cmd=("$TESTBED" app) ;;
        node) cmd=(node conformance/node/testbed.mjs app) ;;
        limit) cmd=("$LIMIT") ;;
        *)
            echo "unknown server $kind" >&2
            return 1
            ;;
    esac
    # Truncated here, not by the child's redirection: a stale "listening on" line from the
    # previous run on this port must not be read as this server's.
    : > "$logfile"
    env PORT="$port" HOST=127.0.0.1 "$@" "${PIN_SERVER[@]}" "${cmd[@]}" >> "$logfile" 2>&1 &
    local pid=$!
    local i
    for ((i = 0; i < 300; i++)); do
        if grep -q '^listening on' "$logfile" 2> /dev/null; then
            STARTED_PID=$pid
            SERVER_PIDS+=("$pid")
            return 0
        fi
        if ! kill -0 "$pid" 2> /dev/null; then
            wait "$pid" 2> /dev/null || true
            tr '\n' ' ' < "$logfile" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "$kind did not start listening within 15 s" >&2
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    return 1
}

stop_server() {
    local pid=$1 i
    kill -TERM "$pid" 2> /dev/null || return 0
    for ((i = 0; i < 120; i++)); do
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
}

# json_line SCENARIO SERVER ROUND FIELD MESSAGE: a line for a run that did not happen.
json_line() {
    local msg=${5//\\/\\\\}
    msg=${msg//\"/\\\"}
    msg=$(printf '%s' "$msg" | tr -d '\000-\037')
    printf '{"scenario":"%s","server":"%s","round":%s,"%s":"%s"}\n' "$1" "$2" "$3" "$4" "$msg" >> "$JSONL"
}

# --- scenarios ------------------------------------------------------------------------------

BIG_N=50000
if ((NOFILE < BIG_N + 500)) && [ "$QUICK" = 0 ]; then
    BIG_N=$((NOFILE - 500))
    BIG_NOTE="file limit is $NOFILE (hard limit; raising it needs CAP_SYS_RESOURCE): connect-max ran $BIG_N connections instead of 50000"
fi

# scenario_args NAME: the load generator's command line for a scenario.
scenario_args() {
    if [ "$QUICK" = 1 ]; then
        case "$1" in
            connect) echo "connect --n 1000 --rate 2000 --settle-ms 500" ;;
            connect-polling) echo "connect --transport polling --n 200 --rate 500 --settle-ms 500" ;;
            echo) echo "echo --clients 20 --duration 1 --warmup 0.3" ;;
            fanout) echo "fanout --receivers 100 --messages 100" ;;
            fanout-paced) echo "fanout --receivers 100 --rate 50 --duration 1" ;;
            rooms) echo "rooms --clients 100 --rooms 10 --rounds 20" ;;
            cluster-fanout) echo "cluster-fanout --receivers 100 --messages 100" ;;
            connect-max) echo "connect --n 2000 --rate 2000 --settle-ms 500" ;;
        esac
        return
    fi
    case "$1" in
        connect) echo "connect --n 10000 --rate 2000" ;;
        connect-polling) echo "connect --transport polling --n 1000 --rate 1000" ;;
        echo) echo "echo --clients 100 --duration 5 --warmup 1" ;;
        fanout) echo "fanout --receivers 1000 --messages 1000" ;;
        fanout-paced) echo "fanout --receivers 1000 --rate 50 --duration 5" ;;
        rooms) echo "rooms --clients 1000 --rooms 10 --rounds 300" ;;
        cluster-fanout) echo "cluster-fanout --receivers 1000 --messages 200" ;;
        connect-max) echo "connect --n $BIG_N --rate 2500" ;;
    esac
}

# loadgen SCENARIO SERVER ROUND [options...]: runs the load generator, appends its line.
loadgen() {
    local scenario=$1 server=$2 round=$3
    shift 3
    local line
    line=$("${PIN_LOADGEN[@]}" "$LOADGEN" "$@" --name "$scenario" --server "$server" --round "$round" \
        2> "$LOGS/loadgen-$scenario-$server-$round.err") || true
    if [ -z "$line" ]; then
        json_line "$scenario" "$server" "$round" error "load generator failed: $(head -c 300 "$LOGS/loadgen-$scenario-$server-$round.err")"
    else
        echo "$line" >> "$JSONL"
    fi
    local summary
    summary=$(printf '%s' "$line" |
        grep -o '"\(kib_per_conn\|acks_per_s\|deliveries_per_s\|p99_ms\|loss_pct\|error\)":[^,}]*' |
        tr '\n' ' ') || true
    log "  $scenario $server round $round: ${summary:-no result}"
}

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
while ! port_free "$PORT" || ! port_free "$((PORT + 1))"; do
    PORT=$((PORT + 2))
done
REDIS_PID=""
REDIS_PORT=$((PORT + 90))
while ! port_free "$REDIS_PORT"; do
    REDIS_PORT=$((REDIS_PORT + 1))
done
start_redis() {
    [ -n "$REDIS_PID" ] && return 0
    command -v "$REDIS_SERVER" > /dev/null || return 1
    "${PIN_SERVER[@]}" "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize no > "$LOGS/redis.log" 2>&1 &
    REDIS_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        if redis-cli -p "$REDIS_PORT" ping 2> /dev/null | grep -q PONG; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

run_one() {
    local scenario=$1 server=$2 round=$3
    local args port=$PORT pid
    read -r -a args <<< "$(scenario_args "$scenario")"
    if [ "${#args[@]}" -eq 0 ]; then
        json_line "$scenario" "$server" "$round" error "unknown scenario"
        return
    fi
    if [ "$scenario" = connect-polling ] && [ "$server" = limit ]; then
        return # the limit server speaks WebSocket only
    fi
    if [ "$scenario" = cluster-fanout ]; then
        if [ "$server" = limit ]; then
            return # no cluster for the limit server
        fi
        if ! start_redis; then
            json_line "$scenario" "$server" "$round" skipped "no redis-server to run a cluster"
            log "  $scenario $server: skipped (no redis-server)"
            return
        fi
        local a b err
        err=$(mktemp)
        if ! start_server "$server" "$port" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" NODE_NAME=a 2> "$err"; then
            json_line "$scenario" "$server" "$round" skipped "the testbed cannot join a Redis cluster yet: $(head -c 300 "$err")"
            log "  $scenario $server: skipped: $(head -c 200 "$err")"
            rm -f "$err"
            return
        fi
        a=$STARTED_PID
        if ! start_server "$server" "$((port + 1))" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" NODE_NAME=b 2> "$err"; then
            stop_server "$a"
            SERVER_PIDS=()
            json_line "$scenario" "$server" "$round" skipped "the testbed cannot join a Redis cluster yet: $(head -c 300 "$err")"
            log "  $scenario $server: skipped: $(head -c 200 "$err")"
            rm -f "$err"
            return
        fi
        b=$STARTED_PID
        rm -f "$err"
        loadgen "$scenario" "$server" "$round" "${args[@]}" --addr "127.0.0.1:$port,127.0.0.1:$((port + 1))" \
            --pid "$a,$b"
        stop_server "$a"
        stop_server "$b"
        SERVER_PIDS=()
        return
    fi
    local err
    err=$(mktemp)
    if ! start_server "$server" "$port" 2> "$err"; then
        json_line "$scenario" "$server" "$round" error "server did not start: $(head -c 300 "$err")"
        log "  $scenario $server: server did not start: $(head -c 200 "$err")"
        rm -f "$err"
        return
    fi
    pid=$STARTED_PID
    rm -f "$err"
    local extra=()
    if [ "$scenario" = connect-max ] && [ -n "${BIG_NOTE:-}" ]; then
        extra=(--note "$BIG_NOTE")
    fi
    loadgen "$scenario" "$server" "$round" "${args[@]}" --addr "127.0.0.1:$port" --pid "$pid" "${extra[@]}"
    stop_server "$pid"
    SERVER_PIDS=()
}

log "servers: $SERVERS; scenarios: $SCENARIOS; rounds: $ROUNDS; file limit $NOFILE;" \
    "server on CPU $SERVER_CPU, load generator on CPU $LOADGEN_CPU"
for ((round = 1; round <= ROUNDS; round++)); do
    for scenario in $SCENARIOS; do
        if [ "$scenario" = connect-max ] && ((round > BIG_ROUNDS)); then
            continue
        fi
        for server in $SERVERS; do
            run_one "$scenario" "$server" "$round"
        done
    done
done

if [ -n "$REDIS_PID" ]; then
    kill -TERM "$REDIS_PID" 2> /dev/null || true
    wait "$REDIS_PID" 2> /dev/null || true
    REDIS_PID=""
fi

ELAPSED=$(($(date +%s) - START_TIME))
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
MEM=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')
NODE_VERSION=$(node --version 2> /dev/null || echo none)
SOCKETIO_VERSION=$(node -p 'require("./conformance/node_modules/socket.io/package.json").version' 2> /dev/null || echo none)
CMD="bench/run.sh $*"
TABLE=$("$LOADGEN" report --in "$JSONL" --out "$RESULTS/latest.json" --base sockeye \
    --meta "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --meta "machine=$(nproc) cores ($CPU_MODEL), $MEM, $(uname -sr)" \
    --meta "command=ROUNDS=$ROUNDS SERVERS=\"$SERVERS\" $CMD" \
    --meta "rounds=$ROUNDS" \
    --meta "node=$NODE_VERSION, socket.io $SOCKETIO_VERSION" \
    --meta "git=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)$(git diff --quiet 2> /dev/null || echo -dirty)" \
    --meta "load_average_at_end=$(cut -d' ' -f1-3 /proc/loadavg)" \
    --meta "elapsed_s=$ELAPSED")
{
    echo "Machine: $(nproc) cores ($CPU_MODEL), $MEM, $(uname -sr); Node $NODE_VERSION, socket.io $SOCKETIO_VERSION"
    echo "Command: $CMD (ROUNDS=$ROUNDS), medians; server on CPU $SERVER_CPU, load generator on CPU $LOADGEN_CPU; $(date -u +%Y-%m-%d)"
    echo
    echo "$TABLE"
} > "$RESULTS/latest.md"
echo
cat "$RESULTS/latest.md"
echo
log "done in ${ELAPSED}s: $RESULTS/latest.json, latest.jsonl, latest.md"

#!/bin/bash
# The cost of tracing in instructions, which a loaded machine does not blur:
# one worker under callgrind serves N chat requests (after 200 of warm-up)
# with tracing off, on (http/protobuf, http/json, sampling 1.0, to
# scripts/bench.d/otlp-sink.mjs) and to a collector that is down; prints the
# worker's user-space instructions per request for each (the spans' export
# included: the run waits one flush interval). Kernel work is not counted:
# tracing adds one export write per batch_size spans to it.
#   scripts/bench.d/trace-cost.sh [BUILD_DIR]    (default build-bench; N=2000)
# MODES="notrace protobuf" picks modes; KEEP=DIR keeps each mode's callgrind
# profile as DIR/MODE.cg (for callgrind_annotate).
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
BUILD=${1:-build-bench}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
N=${N:-2000}
command -v valgrind >/dev/null || { echo "valgrind is missing" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-trace-cost.XXXXXX") || exit 1
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
BENCH_KEY=sk-bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BENCH_KEY
export BENCH_BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}'

port_of() { # file: waits for its "port=N" line
    local i=0
    while [ "$i" -lt 100 ]; do
        sed -n 's/^port=\([0-9]*\)$/\1/p' "$1" | head -n 1 | grep . && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

load() { # url n: n requests, four at a time on keep-alive connections
    # shellcheck disable=SC2016
    node --input-type=module -e '
        import http from "node:http";
        const [url, n] = [process.argv[1], Number(process.argv[2])];
        const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
        let bad = 0;
        const one = () => new Promise((res) => {
          const r = http.request(url, { method: "POST", agent, headers: {
            authorization: `Bearer ${process.env.BENCH_KEY}`, "content-type": "application/json" } },
            (rs) => { if (rs.statusCode !== 200) bad++; rs.resume(); rs.on("end", res); });
          r.end(process.env.BENCH_BODY);
        });
        for (let i = 0; i < n; i += 4) await Promise.all([one(), one(), one(), one()]);
        agent.destroy();
        if (bad) { console.error(`${bad} requests failed`); process.exit(1); }' "$1" "$2"
}

"$BUILD/test/mock/sluice-mock" --listen 127.0.0.1:0 >"$TMP/mock.out" 2>/dev/null &
PIDS="$PIDS $!"
node "$ROOT/scripts/bench.d/otlp-sink.mjs" >"$TMP/sink.out" 2>/dev/null &
PIDS="$PIDS $!"
MP=$(port_of "$TMP/mock.out") || { echo "the mock did not start" >&2; exit 1; }
SP=$(port_of "$TMP/sink.out") || { echo "the sink did not start" >&2; exit 1; }

for mode in ${MODES:-notrace protobuf json down}; do
    case $mode in
    notrace) tel="" ;;
    protobuf | json) tel="telemetry: {otlp: {endpoint: http://127.0.0.1:$SP, sampling: 1.0, protocol: http/$mode, flush_interval: 1s}}" ;;
    down) tel="telemetry: {otlp: {endpoint: http://127.0.0.1:9, sampling: 1.0, flush_interval: 1s}}" ;;
    esac
    d=$TMP/$mode
    mkdir -p "$d/var" && chmod 700 "$d/var"
    port=$((20000 + RANDOM % 20000))
    cat >"$d/sluice.yaml" <<EOF
server: {listen: 127.0.0.1:$port, workers: 1, pid_file: $d/pid, error_log: $d/error.log, log_level: warn}
auth: {static_keys: [env:BENCH_KEY]}
storage: {path: $d/var}
providers:
  mock: {kind: openai, base_url: http://127.0.0.1:$MP/v1, max_idle: 256}
models:
  gpt-4o-mini: {targets: [mock/gpt-4o-mini]}
$tel
EOF
    valgrind --tool=callgrind --trace-children=yes --compress-strings=no --callgrind-out-file="$d/cg.%p" \
        "$BUILD/cmd/sluice" serve -c "$d/sluice.yaml" >"$d/out" 2>&1 &
    m=$!
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; do
        sleep 0.3
        i=$((i + 1))
        [ "$i" -lt 100 ] || { echo "$mode: sluice did not start" >&2; kill "$m"; continue 2; }
    done
    w=$(pgrep -P "$m" | head -n 1)
    url=http://127.0.0.1:$port/v1/chat/completions
    load "$url" 200 && sleep 1.5
    callgrind_control -z "$w" >/dev/null 2>&1
    load "$url" "$N" && sleep 1.5 # one flush interval: these spans are exported
    callgrind_control -d "$w" >/dev/null 2>&1
    sleep 0.5
    # shellcheck disable=SC2012
    cg=$(ls -t "$d/cg.$w".* | head -n 1)
    ir=$(grep -h '^summary:\|^totals:' "$cg" | head -n 1 | awk '{ print $2 }')
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$cg" "$KEEP/$mode.cg"; fi
    printf '%-9s %8d instructions per request (%d requests)\n' "$mode" $((ir / N)) "$N"
    kill "$m"
    wait "$m" 2>/dev/null
done

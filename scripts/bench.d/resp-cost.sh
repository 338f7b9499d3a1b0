#!/bin/bash
# The cost of a Responses request in instructions, which a loaded machine
# does not blur: one worker under callgrind (every thread: the thread pool's
# work is counted) serves N requests (after 200 of warm-up) to a model whose
# one target is Anthropic (the mock's /v1/messages), as a chat completion
# (chat), a Responses request that stores its response (store, the default)
# and one with store: false (nostore); prints the worker's user-space
# instructions per request of each. Kernel work is not counted.
#   scripts/bench.d/resp-cost.sh [BUILD_DIR]    (default build-bench; N=2000)
# KEEP=1 keeps the callgrind files (for callgrind_annotate) and says where.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
BUILD=${1:-build-bench}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
N=${N:-2000}
MODES=${MODES:-chat store nostore}
command -v valgrind >/dev/null || { echo "valgrind is missing" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-resp-cost.XXXXXX") || exit 1
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
BENCH_KEY=sk-bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BENCH_KEY

port_of() { # file: waits for its "port=N" line
    local i=0
    while [ "$i" -lt 100 ]; do
        sed -n 's/^port=\([0-9]*\)$/\1/p' "$1" | head -n 1 | grep . && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

load() { # url body n: n requests, four at a time on keep-alive connections
    # shellcheck disable=SC2016
    node --input-type=module -e '
        import http from "node:http";
        const [url, body, n] = [process.argv[1], process.argv[2], Number(process.argv[3])];
        const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
        let bad = 0;
        const one = () => new Promise((res) => {
          const r = http.request(url, { method: "POST", agent, headers: {
            authorization: `Bearer ${process.env.BENCH_KEY}`, "content-type": "application/json" } },
            (rs) => { if (rs.statusCode !== 200) bad++; rs.resume(); rs.on("end", res); });
          r.end(body);
        });
        for (let i = 0; i < n; i += 4) await Promise.all([one(), one(), one(), one()]);
        agent.destroy();
        if (bad) { console.error(`${bad} requests failed`); process.exit(1); }' "$1" "$2" "$3"
}

"$BUILD/test/mock/sluice-mock" --listen 127.0.0.1:0 >"$TMP/mock.out" 2>/dev/null &
PIDS="$PIDS $!"
MP=$(port_of "$TMP/mock.out") || { echo "the mock did not start" >&2; exit 1; }

for mode in $MODES; do
    case $mode in
    chat) path=/v1/chat/completions body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}' ;;
    store) path=/v1/responses body='{"model":"gpt-4o-mini","input":"Say hello"}' ;;
    nostore) path=/v1/responses body='{"model":"gpt-4o-mini","input":"Say hello","store":false}' ;;
    *) echo "unknown mode $mode" >&2; continue ;;
    esac
    d=$TMP/$mode
    mkdir -p "$d/var" && chmod 700 "$d/var"
    port=$((20000 + RANDOM % 20000))
    cat >"$d/sluice.yaml" <<EOF
server: {listen: 127.0.0.1:$port, workers: 1, pid_file: $d/pid, error_log: $d/error.log, log_level: warn}
auth: {static_keys: [env:BENCH_KEY]}
storage: {path: $d/var}
providers:
  anth: {kind: anthropic, base_url: http://127.0.0.1:$MP, max_idle: 256}
models:
  gpt-4o-mini: {targets: [anth/claude-haiku-4-5]}
EOF
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$d/cg.%p" \
        "$BUILD/cmd/sluice" serve -c "$d/sluice.yaml" >"$d/out" 2>&1 &
    m=$!
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; do
        sleep 0.3
        i=$((i + 1))
        [ "$i" -lt 100 ] || { echo "$mode: sluice did not start" >&2; kill "$m"; continue 2; }
    done
    w=$(pgrep -P "$m" | head -n 1)
    url=http://127.0.0.1:$port$path
    load "$url" "$body" 200 && sleep 1
    callgrind_control -z "$w" >/dev/null 2>&1
    load "$url" "$body" "$N" && sleep 1
    callgrind_control -d "$w" >/dev/null 2>&1
    sleep 0.5
    # shellcheck disable=SC2012
    f=$(ls -t "$d/cg.$w".* | head -n 1)
    ir=$(grep -h '^summary:\|^totals:' "$f" | head -n 1 | awk '{ print $2 }')
    printf '%-8s %8d instructions per request (%d requests)%s\n' "$mode" $((ir / N)) "$N" \
        "$([ "${KEEP:-0}" = 1 ] && echo " $f")"
    kill "$m"
    wait "$m" 2>/dev/null
done

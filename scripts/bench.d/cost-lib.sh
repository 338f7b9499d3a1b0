# shellcheck shell=bash
# shellcheck disable=SC2034 # ROOT, MP and IR are for the scripts that source this
# Shared by scripts/bench.d/*-cost.sh (sourced, not run): one sluice worker
# under callgrind serves N requests after a warm-up, and the worker's
# user-space instructions per request are read from the profile. Counts do
# not move with the machine's load, unlike req/s. Kernel work is not
# counted.
#
#   cost_init NAME DEFAULT_N [BUILD_DIR]   ROOT, BUILD, N, TMP, PIDS, BENCH_KEY; cleanup on exit
#   cost_start_mock                         the mock on a free port: MP
#   cost_port_of FILE                       waits for FILE's "port=N" line and prints N
#   cost_load URL BODY COUNT                COUNT POSTs, four at a time on keep-alive connections
#   cost_run MODE PATH BODY WARMUP YAML     a sluice with YAML (providers, models, the rest)
#                                           under callgrind; prints MODE's instructions per
#                                           request and sets IR to it
# Environment: N (requests measured), COST_VARY=1 (each request's first
# message content gets a unique prefix), COST_CLIENT_KEY (the key the load sends
# instead of BENCH_KEY, e.g. a stored key), KEEP=DIR (keep each mode's profile as
# DIR/MODE.cg, for callgrind_annotate), COST_SETTLE (seconds to wait after
# each load, default 1: a flush interval for exports).

cost_init() { # name default_n [build]
    cd "$(dirname "$0")/../.." || exit 1
    ROOT=$PWD
    BUILD=${3:-build-bench}
    case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
    N=${N:-$2}
    command -v valgrind >/dev/null || { echo "valgrind is missing" >&2; exit 1; }
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-$1-cost.XXXXXX") || exit 1
    PIDS=""
    trap cost_cleanup EXIT
    BENCH_KEY=sk-bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
    export BENCH_KEY
}

cost_cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}

cost_port_of() { # file
    local i=0
    while [ "$i" -lt 100 ]; do
        sed -n 's/^port=\([0-9]*\)$/\1/p' "$1" | head -n 1 | grep . && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

cost_start_mock() {
    "$BUILD/test/mock/sluice-mock" --listen 127.0.0.1:0 >"$TMP/mock.out" 2>/dev/null &
    PIDS="$PIDS $!"
    MP=$(cost_port_of "$TMP/mock.out") || { echo "the mock did not start" >&2; exit 1; }
}

cost_load() { # url body count
    # the body goes through a file: an argument (or an environment string) stops at 128 KiB
    printf '%s' "$2" >"$TMP/load-body"
    # shellcheck disable=SC2016
    node --input-type=module -e '
        import http from "node:http";
        import { readFileSync } from "node:fs";
        const [url, n] = [process.argv[1], Number(process.argv[3])];
        const body = readFileSync(process.argv[2], "utf8");
        const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
        // COST_VARY=1: every text unique (see scripts/bench.d/chat.lua)
        const vary = process.env.COST_VARY === "1";
        let bad = 0, seq = 0;
        const one = () => new Promise((res) => {
          const r = http.request(url, { method: "POST", agent, headers: {
            authorization: `Bearer ${process.env.COST_CLIENT_KEY || process.env.BENCH_KEY}`, "content-type": "application/json" } },
            (rs) => { if (rs.statusCode !== 200) bad++; rs.resume(); rs.on("end", res); });
          r.end(vary ? body.replace("\"content\":\"", `"content":"Request ${process.pid}-${++seq}. `) : body);
        });
        for (let i = 0; i < n; i += 4) await Promise.all([one(), one(), one(), one()]);
        agent.destroy();
        if (bad) { console.error(`${bad} requests failed`); process.exit(1); }' "$1" "$TMP/load-body" "$3"
}

cost_run() { # mode path body warmup yaml
    local mode=$1 path=$2 body=$3 warm=$4 yaml=$5 d port m w i f ir settle=${COST_SETTLE:-1}
    IR=""
    d=$TMP/$mode
    mkdir -p "$d/var" && chmod 700 "$d/var"
    port=$((20000 + RANDOM % 20000))
    cat >"$d/sluice.yaml" <<EOF
server: {listen: 127.0.0.1:$port, workers: 1, pid_file: $d/pid, error_log: $d/error.log, log_level: warn}
auth: {static_keys: [env:BENCH_KEY]}
storage: {path: $d/var}
$yaml
EOF
    valgrind --tool=callgrind --trace-children=yes --compress-strings=no --compress-pos=no \
        --callgrind-out-file="$d/cg.%p" "$BUILD/cmd/sluice" serve -c "$d/sluice.yaml" >"$d/out" 2>&1 &
    m=$!
    i=0
    until curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; do
        sleep 0.3
        i=$((i + 1))
        [ "$i" -lt 100 ] || { echo "$mode: sluice did not start" >&2; kill "$m"; return 1; }
    done
    w=$(pgrep -P "$m" | head -n 1)
    cost_load "http://127.0.0.1:$port$path" "$body" "$warm" && sleep "$settle"
    callgrind_control -z "$w" >/dev/null 2>&1
    cost_load "http://127.0.0.1:$port$path" "$body" "$N" && sleep "$settle"
    callgrind_control -d "$w" >/dev/null 2>&1
    sleep 0.5
    # shellcheck disable=SC2012
    f=$(ls -t "$d/cg.$w".* | head -n 1)
    ir=$(grep -h '^summary:\|^totals:' "$f" | head -n 1 | awk '{ print $2 }')
    IR=$((ir / N))
    printf '%-10s %9d instructions per request (%d requests)\n' "$mode" "$IR" "$N"
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$f" "$KEEP/$mode.cg"; fi
    kill "$m"
    wait "$m" 2>/dev/null
    return 0
}

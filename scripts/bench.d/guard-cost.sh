#!/bin/bash
# The cost of the guardrails in instructions, which a loaded machine does
# not blur: one worker under callgrind serves N chat requests (after 50 of
# warm-up) with the 20 KiB prompt of scripts/bench's guard section, with no
# policy (noguard), every built-in detector redacting with restore
# (detectors) and a limits-only policy (limits); prints the worker's
# user-space instructions per request for each and the ratios.
#   scripts/bench.d/guard-cost.sh [BUILD_DIR]    (default build-bench; N=300)
# CG_KEEP=DIR keeps the callgrind files there (callgrind_annotate them).
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
BUILD=${1:-build-bench}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
N=${N:-300}
GUARD_KB=${BENCH_GUARD_KB:-20}
MODES=${MODES:-noguard detectors limits}
command -v valgrind >/dev/null || { echo "valgrind is missing" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-guard-cost.XXXXXX") || exit 1
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
BENCH_KEY=sk-bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BENCH_KEY

# the same prompt as scripts/bench's guard_body
guard_body() {
    local para text="" i=0
    para="Ticket %d: the customer wrote again about the delayed delivery of the spare parts and"
    para="$para asks whether the invoice of last month can be split over two payments; she can be"
    para="$para reached at jane.roe%d@example.com or on +44 20 7946 0%03d during office hours, the"
    para="$para order number is 4111111111111112 and the request came from 10.20.%d.40 according"
    para="$para to the support portal, version 2.4.1, logged at 12:30:45 on 2026-03-14. "
    while [ "${#text}" -lt $((GUARD_KB * 1024)) ]; do
        # shellcheck disable=SC2059
        printf -v text '%s'"$para" "$text" "$i" "$i" $((i % 1000)) $((i % 250))
        i=$((i + 1))
    done
    printf '{"model":"gpt-4o-mini","max_tokens":1000,"messages":[{"role":"user","content":"%s"}]}' \
        "${text:0:$((GUARD_KB * 1024))}"
}
BENCH_BODY=$(guard_body)
export BENCH_BODY

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
MP=$(port_of "$TMP/mock.out") || { echo "the mock did not start" >&2; exit 1; }

for mode in $MODES; do
    case $mode in
    noguard) pol="" ;;
    detectors) pol="guardrails:
  policies:
    pii: [{detect: [email, phone, card, iban, ip, secret], action: redact, restore: true}]
  apply: pii" ;;
    limits) pol="guardrails:
  policies:
    lim: [{limits: {max_prompt_tokens: 100000, max_output_tokens: 4000, max_messages: 100, max_images: 10, max_body: 1MiB}}]
  apply: lim" ;;
    *) echo "unknown mode $mode" >&2; exit 1 ;;
    esac
    d=$TMP/$mode
    mkdir -p "$d/var" && chmod 700 "$d/var"
    port=$((20000 + RANDOM % 20000))
    cat >"$d/sluice.yaml" <<EOC
server: {listen: 127.0.0.1:$port, workers: 1, pid_file: $d/pid, error_log: $d/error.log, log_level: warn}
auth: {static_keys: [env:BENCH_KEY]}
storage: {path: $d/var}
providers:
  mock: {kind: openai, base_url: http://127.0.0.1:$MP/v1, max_idle: 256}
models:
  gpt-4o-mini: {targets: [mock/gpt-4o-mini]}
$pol
EOC
    valgrind --tool=callgrind --trace-children=yes --compress-strings=no --compress-pos=no --callgrind-out-file="$d/cg.%p" \
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
    load "$url" 50 && sleep 1
    callgrind_control -z "$w" >/dev/null 2>&1
    load "$url" "$N" && sleep 1
    callgrind_control -d "$w" >/dev/null 2>&1
    sleep 0.5
    # shellcheck disable=SC2012
    f=$(ls -t "$d/cg.$w".* | head -n 1)
    ir=$(grep -h '^summary:\|^totals:' "$f" | head -n 1 | awk '{ print $2 }')
    printf -v "ir_$mode" '%s' $((ir / N))
    printf '%-10s %9d instructions per request (%d requests)\n' "$mode" $((ir / N)) "$N"
    [ -n "${CG_KEEP:-}" ] && mkdir -p "$CG_KEEP" && cp "$f" "$CG_KEEP/cg.$mode"
    kill "$m"
    wait "$m" 2>/dev/null
done
if [ -n "${ir_noguard:-}" ]; then
    for mode in $MODES; do
        [ "$mode" = noguard ] && continue
        v=ir_$mode
        awk -v a="$ir_noguard" -v b="${!v}" -v m="$mode" \
            'BEGIN { printf "%-10s instructions noguard/%s: %.3f\n", m, m, a / b }'
    done
fi

#!/bin/bash
# Two builds of sluice side by side on scripts/bench's accounting "full"
# path (a stored key with rpm/tpm it never reaches, a pricing table, the
# ledger; 2 workers each, one mock), in alternating wrk -t2 -c64 runs of D
# seconds (default 5), R rounds (default 6; each pair runs in the other
# order than the one before, as the second run of a pair gains): per run, the requests served
# and the workers' CPU time per request (user + system of every thread,
# from /proc). A pair of runs sees nearly the same machine, so the pairs
# tell a few-percent change that whole bench runs on a shared machine do
# not.
#   scripts/bench.d/ab-full.sh BUILD_A BUILD_B     (build dirs: BUILD/cmd/sluice)
# EXTRA="yaml line" adds to both configs; EXTRA_A and EXTRA_B to one of
# them, so BUILD_A and BUILD_B may be the same build: the ledger's cost in
# pairs is  EXTRA_B="ledger: {enabled: false}" ab-full.sh build-bench build-bench
# BODY_FILE=FILE sends FILE as the request body instead of the small chat
# (a streamed chat, a long prompt; its model must be gpt-4o-mini).
#   scripts/bench.d/ab-full.sh BUILD_A nginx
# puts nginx proxy_pass in B's place (scripts/bench's baseline: 2 workers,
# upstream keepalive 64, access log off; its workers' CPU as B's): the
# full path against nginx in pairs, beside scripts/bench's accounting
# section, which measures the two in rounds of four targets. Either way
# the last lines are the medians over the pairs of B/A CPU per request and
# of A/B requests served.
set -u
[ $# -eq 2 ] || { echo "usage: $0 BUILD_A BUILD_B|nginx" >&2; exit 2; }
for b in "$1" "$2"; do
    [ "$b" = nginx ] && [ "$b" = "$2" ] && continue
    [ -x "$b/cmd/sluice" ] || { echo "no $b/cmd/sluice" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "wrk is needed (scripts/setup installs it)" >&2; exit 2; }
if [ "$2" = nginx ]; then
    command -v nginx >/dev/null || { echo "nginx is needed (scripts/setup installs it)" >&2; exit 2; }
fi
BUILD_A=$1
BUILD_B=$2
T=$(mktemp -d /tmp/sluice-ab.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$T"' EXIT

"$BUILD_A/test/mock/sluice-mock" --listen 127.0.0.1:0 >"$T/mock.out" 2>/dev/null &
for _ in $(seq 1 50); do
    MP=$(sed -n 's/^port=//p' "$T/mock.out")
    [ -n "$MP" ] && break
    sleep 0.1
done
[ -n "$MP" ] || { echo "the mock did not start" >&2; exit 1; }
cat >"$T/pricing.yaml" <<EOP
models:
  mock/gpt-4o-mini: {input: 0.15, output: 0.6, cached_input: 0.075, max_output: 16384}
EOP

# start NAME BUILD: a sluice on a free port; sets PORT_NAME and WORKERS_NAME
start() {
    local name=$1 build=$2 port key master extra=EXTRA_$1
    extra=${!extra:-}
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$T/$name/var" && chmod 700 "$T/$name/var"
    cat >"$T/$name/sluice.yaml" <<EOY
server: {listen: 127.0.0.1:$port, workers: 2, pid_file: $T/$name/pid, error_log: $T/$name/err.log, log_level: warn}
storage: {path: $T/$name/var}
providers:
  mock: {kind: openai, base_url: http://127.0.0.1:$MP/v1, max_idle: 256}
models:
  gpt-4o-mini: {targets: [mock/gpt-4o-mini]}
pricing: $T/pricing.yaml
${EXTRA:-}
$extra
EOY
    key=$("$build/cmd/sluice" keys create --name bench --rpm 1000000000 --tpm 1000000000000 \
        --json -c "$T/$name/sluice.yaml" | sed -n 's/.*"key": *"\(sk-sluice-[^"]*\)".*/\1/p')
    [ -n "$key" ] || { echo "$name: keys create failed" >&2; exit 1; }
    "$build/cmd/sluice" serve -c "$T/$name/sluice.yaml" >"$T/$name/out" 2>&1 &
    master=$!
    started "$name" "$port" "$master" /healthz \
        "wrk.headers[\"Authorization\"] = \"Bearer $key\""
}

# started NAME PORT MASTER PATH [LUA]: waits until PATH answers on PORT, sets
# PORT_NAME and WORKERS_NAME (MASTER's children), and writes NAME's wrk script
# (the body of $T/body.json; LUA: one more line, such as a header)
started() {
    local name=$1 port=$2 master=$3
    for _ in $(seq 1 50); do
        curl -s -o /dev/null "http://127.0.0.1:$port$4" && break
        sleep 0.1
    done
    printf -v "PORT_$name" '%s' "$port"
    printf -v "WORKERS_$name" '%s' "$(pgrep -P "$master" | tr '\n' ' ')"
    cat >"$T/$name/req.lua" <<EOL
local f = io.open("$T/body.json")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
${5:-}
EOL
}

# start_nginx NAME: nginx proxy_pass to the mock on a free port, as scripts/bench's
start_nginx() {
    local name=$1 port d=$T/$1
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$d/tmp"
    cat >"$d/nginx.conf" <<EOY
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log notice;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    upstream mock { server 127.0.0.1:$MP; keepalive 64; }
    server {
        listen 127.0.0.1:$port;
        location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOY
    nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;' >"$d/out" 2>&1 &
    started "$name" "$port" $! /
}

# ticks PIDS: user + system clock ticks of every thread of PIDS
ticks() {
    local p
    for p in $1; do cat /proc/"$p"/task/*/stat; done | sed 's/.*) //' | awk '{ t += $12 + $13 } END { print t + 0 }'
}

# run NAME [SECONDS]: one wrk run; prints NAME, requests and CPU us per request
run() {
    local name=$1 port workers t0 t1 n
    port=PORT_$name
    workers=WORKERS_$name
    t0=$(ticks "${!workers}")
    n=$(wrk -t2 -c64 -d"${2:-${D:-5}}"s -s "$T/$name/req.lua" "http://127.0.0.1:${!port}/v1/chat/completions" |
        awk '/requests in/ { print $1 }')
    t1=$(ticks "${!workers}")
    awk -v n="$n" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v name="$name" \
        'BEGIN { if (n > 0) printf "%s %8d requests %6.1f us CPU per request\n", name, n, t * 1e6 / hz / n }'
}

if [ -n "${BODY_FILE:-}" ]; then
    cp "$BODY_FILE" "$T/body.json"
else
    printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}' >"$T/body.json"
fi
start A "$BUILD_A"
if [ "$BUILD_B" = nginx ]; then
    start_nginx B
else
    start B "$BUILD_B"
fi
run A 2 >/dev/null # warm-up
run B 2 >/dev/null
# each pair in the other order than the last: the second run of a pair
# was seen to gain ~2% (one build against a same-code twin, both ways round)
for i in $(seq 1 "${R:-6}"); do
    if [ $((i % 2)) = 1 ]; then
        run A
        run B
    else
        run B
        run A
    fi
done | tee "$T/runs"
# the pairs' ratios: B/A CPU per request (above 1: A is cheaper), A/B requests served
awk 'BEGIN { k = 0 } $1 == "A" { an = $2; ac = $4 } $1 == "B" { bn = $2; bc = $4 }
    an > 0 && ac > 0 && bn > 0 && bc > 0 { cpu[k] = bc / ac; req[k] = an / bn; k++; an = ac = bn = bc = 0 }
    function median(v, m,   i, j, t) {
        for (i = 1; i < m; i++) for (j = i; j > 0 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return m % 2 ? v[int(m / 2)] : (v[m / 2 - 1] + v[m / 2]) / 2
    }
    END { if (k > 0) printf "median of %d pairs: CPU per request B/A %.3f, requests A/B %.3f\n", k, median(cpu, k), median(req, k) }' "$T/runs"

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
# profile as DIR/MODE.cg (for callgrind_annotate). See cost-lib.sh.
set -u
# shellcheck source=scripts/bench.d/cost-lib.sh
. "$(dirname "$0")/cost-lib.sh"
cost_init trace 2000 "${1:-}"
BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}'
COST_SETTLE=1.5 # one flush interval: the measured requests' spans are exported

cost_start_mock
node "$ROOT/scripts/bench.d/otlp-sink.mjs" >"$TMP/sink.out" 2>/dev/null &
PIDS="$PIDS $!"
SP=$(cost_port_of "$TMP/sink.out") || { echo "the sink did not start" >&2; exit 1; }

for mode in ${MODES:-notrace protobuf json down}; do
    case $mode in
    notrace) tel="" ;;
    protobuf | json) tel="telemetry: {otlp: {endpoint: http://127.0.0.1:$SP, sampling: 1.0, protocol: http/$mode, flush_interval: 1s}}" ;;
    down) tel="telemetry: {otlp: {endpoint: http://127.0.0.1:9, sampling: 1.0, flush_interval: 1s}}" ;;
    *) echo "unknown mode $mode" >&2; exit 1 ;;
    esac
    cost_run "$mode" /v1/chat/completions "$BODY" 200 "providers:
  mock: {kind: openai, base_url: http://127.0.0.1:$MP/v1, max_idle: 256}
models:
  gpt-4o-mini: {targets: [mock/gpt-4o-mini]}
$tel"
done

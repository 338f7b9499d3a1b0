#!/bin/bash
# The cost of a Responses request in instructions, which a loaded machine
# does not blur: one worker under callgrind (every thread: the thread pool's
# work is counted) serves N requests (after 200 of warm-up) to a model whose
# one target is Anthropic (the mock's /v1/messages), as a chat completion
# (chat), a Responses request that stores its response (store, the default)
# and one with store: false (nostore); prints the worker's user-space
# instructions per request of each. Kernel work is not counted.
#   scripts/bench.d/resp-cost.sh [BUILD_DIR]    (default build-bench; N=2000)
# KEEP=DIR keeps each mode's callgrind profile as DIR/MODE.cg (for
# callgrind_annotate). See cost-lib.sh.
set -u
# shellcheck source=scripts/bench.d/cost-lib.sh
. "$(dirname "$0")/cost-lib.sh"
cost_init resp 2000 "${1:-}"
cost_start_mock

for mode in ${MODES:-chat store nostore}; do
    case $mode in
    chat) path=/v1/chat/completions body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}' ;;
    store) path=/v1/responses body='{"model":"gpt-4o-mini","input":"Say hello"}' ;;
    nostore) path=/v1/responses body='{"model":"gpt-4o-mini","input":"Say hello","store":false}' ;;
    *) echo "unknown mode $mode" >&2; exit 1 ;;
    esac
    cost_run "$mode" "$path" "$body" 200 "providers:
  anth: {kind: anthropic, base_url: http://127.0.0.1:$MP, max_idle: 256}
models:
  gpt-4o-mini: {targets: [anth/claude-haiku-4-5]}"
done

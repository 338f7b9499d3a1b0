#!/bin/bash
# The cost of the accounting path in instructions, which a loaded machine
# does not blur: one worker under callgrind serves N chat requests (after 200
# of warm-up) on scripts/bench's accounting "full" path (a stored key with
# rpm/tpm limits it never reaches, a pricing table, the ledger) with the
# ledger on (full) and off (noledger); prints the worker's user-space
# instructions per request for each. Kernel work (page faults of the ledger's
# map, msync) is not counted.
#   scripts/bench.d/acct-cost.sh [BUILD_DIR]    (default build-bench; N=2000)
# MODES="full noledger" picks modes; KEEP=DIR keeps each mode's callgrind
# profile as DIR/MODE.cg (for callgrind_annotate). See cost-lib.sh.
set -u
# shellcheck source=scripts/bench.d/cost-lib.sh
. "$(dirname "$0")/cost-lib.sh"
cost_init acct 2000 "${1:-}"
BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}'

cost_start_mock
for mode in ${MODES:-full noledger}; do
    case $mode in
    full) extra="" ;;
    noledger) extra="ledger: {enabled: false}" ;;
    *) echo "unknown mode $mode" >&2; exit 1 ;;
    esac
    d=$TMP/$mode
    mkdir -p "$d/var" && chmod 700 "$d/var"
    cat >"$d/pricing.yaml" <<EOP
models:
  mock/gpt-4o-mini: {input: 0.15, output: 0.6, cached_input: 0.075, max_output: 16384}
EOP
    yaml="providers:
  mock: {kind: openai, base_url: http://127.0.0.1:$MP/v1, max_idle: 256}
models:
  gpt-4o-mini: {targets: [mock/gpt-4o-mini]}
pricing: $d/pricing.yaml
$extra"
    # the key is stored before the server starts (cost_run writes the same storage path)
    printf 'auth: {static_keys: [env:BENCH_KEY]}\nstorage: {path: %s/var}\n%s\n' "$d" "$yaml" >"$d/sluice.yaml"
    out=$("$BUILD/cmd/sluice" keys create --name bench --rpm 1000000000 --tpm 1000000000000 \
        --json -c "$d/sluice.yaml" 2>"$d/keys.err") || { cat "$d/keys.err" >&2; exit 1; }
    COST_CLIENT_KEY=$(printf '%s' "$out" | sed -n 's/.*"key": *"\(sk-sluice-[^"]*\)".*/\1/p' | head -n 1)
    [ -n "$COST_CLIENT_KEY" ] || { echo "no key in: $out" >&2; exit 1; }
    export COST_CLIENT_KEY
    cost_run "$mode" /v1/chat/completions "$BODY" 200 "$yaml"
done

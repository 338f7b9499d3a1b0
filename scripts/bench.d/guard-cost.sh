#!/bin/bash
# The cost of the guardrails in instructions, which a loaded machine does
# not blur: one worker under callgrind serves N chat requests (after 50 of
# warm-up) with the 20 KiB prompt of scripts/bench's guard section, with no
# policy (noguard), every built-in detector redacting with restore
# (detectors) and a limits-only policy (limits); prints the worker's
# user-space instructions per request for each and the ratios. The mock's
# answer echoes only the prompt's first 200 characters, so restoring the
# answer is a small part of it. Each request's text is unique (COST_VARY):
# the detectors' memo answers for a text a worker scanned before, so these
# are the figures of a scan. GUARD_SAME=1 sends one text throughout instead,
# as an agent resends the earlier turns of its conversation (the memo's
# figure).
#   scripts/bench.d/guard-cost.sh [BUILD_DIR]    (default build-bench; N=300)
# KEEP=DIR keeps each mode's callgrind profile as DIR/MODE.cg (for
# callgrind_annotate). See cost-lib.sh.
set -u
if [ -z "${GUARD_SAME:-}" ]; then
    export COST_VARY=1
fi
# shellcheck source=scripts/bench.d/cost-lib.sh
. "$(dirname "$0")/cost-lib.sh"
cost_init guard 300 "${1:-}"
GUARD_KB=${BENCH_GUARD_KB:-20}

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
# GUARD_TEXT=FILE: the prompt is FILE's first GUARD_KB KiB instead (e.g.
# README.md: prose and code with hardly anything to redact), JSON-escaped
text_body() {
    head -c $((GUARD_KB * 1024)) "$1" | node -e '
        let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () =>
          process.stdout.write(JSON.stringify({ model: "gpt-4o-mini", max_tokens: 1000,
            messages: [{ role: "user", content: s }] })));'
}
if [ -n "${GUARD_TEXT:-}" ]; then
    BODY=$(text_body "$GUARD_TEXT")
else
    BODY=$(guard_body)
fi

cost_start_mock
for mode in ${MODES:-noguard detectors limits}; do
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
    cost_run "$mode" /v1/chat/completions "$BODY" 50 "providers:
  mock: {kind: openai, base_url: http://127.0.0.1:$MP/v1, max_idle: 256}
models:
  gpt-4o-mini: {targets: [mock/gpt-4o-mini]}
$pol" || continue
    printf -v "ir_$mode" '%s' "$IR"
done
if [ -n "${ir_noguard:-}" ]; then
    for mode in ${MODES:-noguard detectors limits}; do
        v=ir_$mode
        [ "$mode" = noguard ] || [ -z "${!v:-}" ] && continue
        awk -v a="$ir_noguard" -v b="${!v}" -v m="$mode" \
            'BEGIN { printf "%-10s instructions noguard/%s: %.3f\n", m, m, a / b }'
    done
fi

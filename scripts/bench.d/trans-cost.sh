#!/bin/bash
# The cost of a large translated request in instructions, which a loaded
# machine does not blur: one worker under callgrind serves N chat
# completions (after 100 of warm-up) whose one message is 20 KiB of text,
# to a model whose one target is Anthropic (the mock's /v1/messages), so
# that the message is read out of the OpenAI request and written into the
# Anthropic one. Two texts: "prose", README.md's first 20 KiB (ASCII, a
# JSON escape a line), and "intl", 20 KiB of Cyrillic, Japanese and
# accented Latin words (almost every character outside ASCII). Prints the
# worker's user-space instructions per request of each.
#   scripts/bench.d/trans-cost.sh [BUILD_DIR]    (default build-bench; N=300)
# MODES="prose intl" picks; KEEP=DIR keeps each mode's callgrind profile as
# DIR/MODE.cg (for callgrind_annotate). See cost-lib.sh.
set -u
# shellcheck source=scripts/bench.d/cost-lib.sh
. "$(dirname "$0")/cost-lib.sh"
cost_init trans 300 "${1:-}"
cost_start_mock

# trans_body MODE: the chat request, its text JSON-escaped by node
trans_body() {
    node -e '
        const mode = process.argv[1];
        let s = "";
        if (mode === "prose") {
            s = require("fs").readFileSync(process.argv[2]).subarray(0, 20480).toString();
        } else {
            const words = ["привет", "мир", "счёт", "клиент", "заказ", "номер", "телефон",
                           "адрес", "данные", "日本語", "テキスト", "über", "naïve", "café"];
            for (let i = 0; Buffer.byteLength(s) < 20400; i++) {
                s += words[(i * 7 + (i >> 3)) % words.length] + (i % 10 === 9 ? "\n" : " ");
            }
        }
        process.stdout.write(JSON.stringify({ model: "gpt-4o-mini", max_tokens: 100,
                                              messages: [{ role: "user", content: s }] }));
    ' "$1" "$ROOT/README.md"
}

for mode in ${MODES:-prose intl}; do
    case $mode in
    prose | intl) ;;
    *) echo "unknown mode $mode" >&2; exit 1 ;;
    esac
    body=$(trans_body "$mode") || { echo "cannot make the $mode request" >&2; exit 1; }
    cost_run "$mode" /v1/chat/completions "$body" 100 "providers:
  anth: {kind: anthropic, base_url: http://127.0.0.1:$MP, max_idle: 256}
models:
  gpt-4o-mini: {targets: [anth/claude-haiku-4-5]}"
done

#!/usr/bin/env bash
# test_fake_upstream.sh: checks the fake upstream (tests/fake_upstream) on the wire with curl
# and jq: exact stream shapes per API, every x-fake-* knob, keep-alive, the control routes,
# the --record file, backpressure on a 100 MB stream, TLS, and a clean SIGTERM exit.
# Needs: FAKE_UPSTREAM_BIN (set by ctest), curl, jq, openssl. PostgreSQL/Redis are not used.
set -euo pipefail

BIN=${FAKE_UPSTREAM_BIN:?FAKE_UPSTREAM_BIN must point to the fake_upstream binary}
SRC=${TG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
for tool in curl jq openssl; do
    command -v "$tool" >/dev/null || { echo "test_fake_upstream: $tool is required" >&2; exit 1; }
done

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

CHECKS=0
FAILS=0
pass() { CHECKS=$((CHECKS + 1)); }
fail() {
    CHECKS=$((CHECKS + 1))
    FAILS=$((FAILS + 1))
    echo "FAIL: $*" >&2
}
# expect_eq NAME WANT GOT
expect_eq() {
    if [ "$2" == "$3" ]; then
        pass
    else
        fail "$1"
        diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | head -n 20 >&2 || true
    fi
}
# expect_true NAME COMMAND...
expect_true() {
    local name=$1
    shift
    if "$@"; then pass; else fail "$name"; fi
}

# wait_for DEADLINE_S DESCRIPTION COMMAND...: poll, never sleep blindly.
wait_for() {
    local deadline=$(($(date +%s) + $1)) what=$2
    shift 2
    until "$@"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            fail "timed out waiting for $what"
            return 1
        fi
        sleep 0.02
    done
}

# start_fake NAME ARGS...: starts an instance on a free port; sets FAKE_PID and FAKE_PORT.
start_fake() {
    local dir=$WORK/$1
    shift
    mkdir -p "$dir"
    "$BIN" --listen 127.0.0.1:0 --port-file "$dir/port" "$@" 2>"$dir/log" &
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
    local deadline=$(($(date +%s) + 10))
    until [ -s "$dir/port" ]; do
        if ! kill -0 "$FAKE_PID" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
            echo "test_fake_upstream: fake_upstream did not start:" >&2
            cat "$dir/log" >&2
            exit 1
        fi
        sleep 0.02
    done
    FAKE_PORT=$(cat "$dir/port")
}

# Normalises the per-request parts (timestamps, ids) of a reply.
norm() {
    sed -E 's/"created(_at)?":[0-9]+/"created\1":0/g; s/(chatcmpl-|cmpl-|resp_|msg_|rs_|fc_|call_|toolu_)[0-9]+/\1N/g'
}

# ---------------------------------------------------------------------------------------------
# Command line

"$BIN" --help | grep -q -- '--listen' && pass || fail "--help prints the usage"
set +e
"$BIN" --bogus >/dev/null 2>&1
rc=$?
"$BIN" --listen nonsense >/dev/null 2>&1
rc2=$?
set -e
expect_eq "unknown option exits 2" 2 "$rc"
expect_eq "bad --listen exits 2" 2 "$rc2"

start_fake main --record "$WORK/record.jsonl"
MAIN_PID=$FAKE_PID
B=http://127.0.0.1:$FAKE_PORT
C=(curl -sS --max-time 30)
CHAT=$B/v1/chat/completions
MSG='{"model":"gpt-test","messages":[{"role":"user","content":"hello world"}]'
# prompt_tokens of MSG: ceil(11 / 4) + 3 * 1 = 6

# ---------------------------------------------------------------------------------------------
# Chat completions: exact bytes

ROLE='data: {"id":"chatcmpl-N","object":"chat.completion.chunk","created":0,"model":"gpt-test","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]'
TOK0='data: {"id":"chatcmpl-N","object":"chat.completion.chunk","created":0,"model":"gpt-test","choices":[{"index":0,"delta":{"content":"tok0 "},"finish_reason":null}]'
TOK1='data: {"id":"chatcmpl-N","object":"chat.completion.chunk","created":0,"model":"gpt-test","choices":[{"index":0,"delta":{"content":"tok1 "},"finish_reason":null}]'
STOP='data: {"id":"chatcmpl-N","object":"chat.completion.chunk","created":0,"model":"gpt-test","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]'
USAGE='data: {"id":"chatcmpl-N","object":"chat.completion.chunk","created":0,"model":"gpt-test","choices":[],"usage":{"prompt_tokens":6,"completion_tokens":2,"total_tokens":8,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}'

got=$("${C[@]}" "$CHAT" -H 'x-fake-chunks: 2' -d "$MSG,\"stream\":true}" | norm)
want=$(printf '%s}\n\n%s}\n\n%s}\n\n%s}\n\ndata: [DONE]\n' "$ROLE" "$TOK0" "$TOK1" "$STOP")
expect_eq "chat stream without include_usage" "$want" "$got"

got=$("${C[@]}" "$CHAT" -H 'x-fake-chunks: 2' \
    -d "$MSG,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" | norm)
want=$(printf '%s,"usage":null}\n\n%s,"usage":null}\n\n%s,"usage":null}\n\n%s,"usage":null}\n\n%s\n\ndata: [DONE]\n' \
    "$ROLE" "$TOK0" "$TOK1" "$STOP" "$USAGE")
expect_eq "chat stream with include_usage" "$want" "$got"

"${C[@]}" -D "$WORK/h" -o "$WORK/b" "$CHAT" -d "$MSG,\"stream\":true}"
hdr() { tr -d '\r' <"$WORK/h" | grep -i "^$1:" | head -n 1 | cut -d' ' -f2-; }
expect_eq "stream content-type" "text/event-stream; charset=utf-8" "$(hdr content-type)"
expect_eq "stream transfer-encoding" "chunked" "$(hdr transfer-encoding)"
expect_true "x-litellm-call-id is a uuid" \
    grep -Eqi '^x-litellm-call-id: [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}' "$WORK/h"
expect_eq "x-litellm-version" "1.0.0-fake" "$(hdr x-litellm-version)"
expect_eq "x-litellm-model-group" "gpt-test" "$(hdr x-litellm-model-group)"
expect_true "x-litellm-model-id" test -n "$(hdr x-litellm-model-id)"
expect_eq "default is 5 content chunks" 5 "$(grep -c '"content":"tok' "$WORK/b")"

"${C[@]}" -D "$WORK/h" -o "$WORK/b" "$CHAT" -d "$MSG}"
got=$(norm <"$WORK/b")
want='{"id":"chatcmpl-N","object":"chat.completion","created":0,"model":"gpt-test","choices":[{"index":0,"message":{"role":"assistant","content":"tok0 tok1 tok2 tok3 tok4 "},"finish_reason":"stop"}],"usage":{"prompt_tokens":6,"completion_tokens":5,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}'
expect_eq "non-stream chat body" "$want" "$got"
expect_eq "non-stream content-length" "$(wc -c <"$WORK/b" | tr -d ' ')" "$(hdr content-length)"
expect_eq "non-stream content-type" "application/json" "$(hdr content-type)"

got=$("${C[@]}" "$B/chat/completions" -d "$MSG}" | jq -c '.usage.total_tokens')
expect_eq "route without /v1" 11 "$got"

# prompt_tokens formula on content parts, several messages
got=$("${C[@]}" "$CHAT" -d '{"model":"m","messages":[{"role":"system","content":"12345678"},{"role":"user","content":[{"type":"text","text":"abc"},{"type":"image_url","image_url":{"url":"x"}}]}]}' | jq '.usage.prompt_tokens')
expect_eq "prompt_tokens = ceil(11/4) + 3*2" 9 "$got"

# ---------------------------------------------------------------------------------------------
# Legacy completions, embeddings, models, health

got=$("${C[@]}" "$B/v1/completions" -H 'x-fake-chunks: 1' \
    -d '{"model":"m","prompt":"12345","stream":true,"stream_options":{"include_usage":true}}' | norm)
want='data: {"id":"cmpl-N","object":"text_completion","created":0,"model":"m","choices":[{"text":"tok0 ","index":0,"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"cmpl-N","object":"text_completion","created":0,"model":"m","choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"cmpl-N","object":"text_completion","created":0,"model":"m","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}

data: [DONE]'
expect_eq "completions stream" "$want" "$got"
got=$("${C[@]}" "$B/completions" -d '{"model":"m","prompt":["ab","cd"],"n":2}' |
    jq -c '[.object, [.choices[].text], .usage]')
expect_eq "completions non-stream, n=2" \
    '["text_completion",["tok0 tok1 tok2 tok3 tok4 ","tok0 tok1 tok2 tok3 tok4 "],{"prompt_tokens":1,"completion_tokens":10,"total_tokens":11}]' "$got"

got=$("${C[@]}" "$B/v1/embeddings" -H 'x-fake-embedding-dim: 3' -d '{"model":"emb","input":["abcd","efghi"]}')
expect_eq "embeddings" '{"object":"list","data":[{"object":"embedding","index":0,"embedding":[-0.93,-0.76,-0.59]},{"object":"embedding","index":1,"embedding":[-0.62,-0.45,-0.28]}],"model":"emb","usage":{"prompt_tokens":3,"total_tokens":3}}' "$got"
got=$("${C[@]}" "$B/embeddings" -d '{"model":"emb","input":"abc","encoding_format":"base64"}' |
    jq -r '.data[0].embedding' | base64 -d | wc -c | tr -d ' ')
expect_eq "base64 embedding is 8 float32" 32 "$got"

got=$("${C[@]}" "$B/v1/models" | jq -c '[.object, .data[0].id, .data[0].object]')
expect_eq "models" '["list","fake-model","model"]' "$got"
expect_eq "models without /v1" "$("${C[@]}" "$B/v1/models")" "$("${C[@]}" "$B/models")"
expect_eq "liveliness" '"I'"'"'m alive!"' "$("${C[@]}" "$B/health/liveliness")"
expect_eq "readiness" healthy "$("${C[@]}" "$B/health/readiness" | jq -r .status)"

# ---------------------------------------------------------------------------------------------
# Responses API

"${C[@]}" "$B/v1/responses" -H 'x-fake-chunks: 2' \
    -d '{"model":"r","input":"hi","instructions":"be nice","stream":true}' >"$WORK/r"
got=$(grep '^event: ' "$WORK/r" | cut -d' ' -f2 | tr '\n' ' ')
expect_eq "responses event order" "response.created response.in_progress response.output_item.added response.content_part.added response.output_text.delta response.output_text.delta response.output_text.done response.content_part.done response.output_item.done response.completed " "$got"
got=$(grep '^data: ' "$WORK/r" | cut -c7- | jq -sc '[.[].sequence_number]')
expect_eq "responses sequence numbers" '[0,1,2,3,4,5,6,7,8,9]' "$got"
got=$(paste -d' ' <(grep '^event: ' "$WORK/r" | cut -d' ' -f2) <(grep '^data: ' "$WORK/r" | cut -c7- | jq -r .type) | awk '$1 != $2' | wc -l)
expect_eq "responses event name = data.type" 0 "$got"
got=$(grep '^data: ' "$WORK/r" | cut -c7- | jq -c 'select(.response.usage != null) | [.type, .response.usage]')
expect_eq "responses usage only in response.completed" '["response.completed",{"input_tokens":9,"input_tokens_details":{"cached_tokens":0},"output_tokens":2,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":11}]' "$got"
expect_eq "responses delta" '"tok1 "' "$(grep '^data: ' "$WORK/r" | cut -c7- | jq -c 'select(.type=="response.output_text.delta") | .delta' | tail -n 1)"
expect_eq "responses instructions echoed" '"be nice"' "$(grep '^data: ' "$WORK/r" | head -n 1 | cut -c7- | jq -c .response.instructions)"
expect_true "no [DONE] on responses" test "$(grep -c 'DONE' "$WORK/r")" -eq 0
got=$("${C[@]}" "$B/responses" -H 'x-fake-reasoning: 2' -H 'x-fake-chunks: 1' \
    -d '{"model":"r","input":[{"role":"user","content":[{"type":"input_text","text":"abcdefgh"}]}]}' |
    jq -c '[.object, .status, [.output[].type], .output[1].content[0].text, .usage]')
expect_eq "responses non-stream with reasoning" '["response","completed",["reasoning","message"],"tok0 ",{"input_tokens":5,"input_tokens_details":{"cached_tokens":0},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":8}]' "$got"
got=$("${C[@]}" "$B/v1/responses" -H 'x-fake-chunks: 2' -H 'x-fake-tool-calls: 1' \
    -d '{"model":"r","input":"x","stream":true,"tools":[{"type":"function","name":"lookup"}]}' |
    grep '^data: ' | cut -c7- | jq -c 'select(.type=="response.completed") | .response.output[0] | [.type, .name, (.arguments | fromjson)]')
expect_eq "responses function call" '["function_call","lookup",{"input":"tok0 tok1 "}]' "$got"
got=$("${C[@]}" "$B/v1/responses" -d '{"model":"r","input":"x","max_output_tokens":2,"stream":true}' |
    grep '^event: ' | tail -n 1)
expect_eq "responses cut by max_output_tokens" "event: response.incomplete" "$got"

# ---------------------------------------------------------------------------------------------
# Anthropic messages

AMSG='{"model":"claude-x","max_tokens":1000,"system":"sys","messages":[{"role":"user","content":"hello"}]'
# prompt_tokens: ceil((3 + 5) / 4) + 3 * 2 = 8
got=$("${C[@]}" "$B/v1/messages" -H 'x-fake-chunks: 2' -d "$AMSG,\"stream\":true}" | norm)
want='event: message_start
data: {"type":"message_start","message":{"id":"msg_N","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":8,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}

event: ping
data: {"type":"ping"}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"tok0 "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"tok1 "}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}

event: message_stop
data: {"type":"message_stop"}'
expect_eq "messages stream" "$want" "$got"
got=$("${C[@]}" "$B/v1/messages" -H 'x-fake-usage: 100,7,40,3' -d "$AMSG,\"stream\":true}" |
    grep '^data: ' | cut -c7- | jq -c 'select(.usage or .message.usage) | (.message.usage // .usage)')
expect_eq "messages usage knob" '{"input_tokens":60,"cache_creation_input_tokens":0,"cache_read_input_tokens":40,"output_tokens":1}
{"output_tokens":7}' "$got"
got=$("${C[@]}" "$B/v1/messages" -H 'x-fake-reasoning: 1' -H 'x-fake-chunks: 1' -d "$AMSG}" |
    jq -c '[.type, [.content[].type], .stop_reason, .usage]')
expect_eq "messages non-stream" '["message",["thinking","text"],"end_turn",{"input_tokens":8,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2}]' "$got"
got=$("${C[@]}" "$B/v1/messages" -H 'x-fake-tool-calls: 1' -H 'x-fake-chunks: 3' \
    -d '{"model":"c","max_tokens":10,"messages":[],"stream":true,"tools":[{"name":"search"}]}' |
    grep '^data: ' | cut -c7- | jq -r 'select(.delta.type=="input_json_delta") | .delta.partial_json' | tr -d '\n' | jq -c .)
expect_eq "messages tool_use input_json_delta" '{"input":"tok0 tok1 tok2 "}' "$got"

# ---------------------------------------------------------------------------------------------
# Knobs

sse_json() { grep '^data: {' | cut -c7-; }

got=$("${C[@]}" "$CHAT" -H 'x-fake-chunks: 0' -d "$MSG,\"stream\":true}" | grep -c '^data: ')
expect_eq "x-fake-chunks: 0 (role, finish, DONE)" 3 "$got"

got=$("${C[@]}" "$CHAT" -H 'x-fake-chunks: 3' -H 'x-fake-chunk-bytes: 40' -d "$MSG,\"stream\":true}" |
    sse_json | jq -r '.choices[0].delta.content // empty | select(startswith("tok")) | length' | sort -u | tr '\n' ' ')
expect_eq "x-fake-chunk-bytes pads to 40" "40 " "$got"

t=$("${C[@]}" -o /dev/null -w '%{time_total}' "$CHAT" -H 'x-fake-chunks: 3' -H 'x-fake-delay-ms: 100' -d "$MSG,\"stream\":true}")
expect_true "x-fake-delay-ms: 3 x 100 ms ($t s)" awk -v t="$t" 'BEGIN { exit !(t >= 0.29) }'
t=$("${C[@]}" -o /dev/null -w '%{time_starttransfer}' "$CHAT" -H 'x-fake-first-byte-delay-ms: 300' -d "$MSG}")
expect_true "x-fake-first-byte-delay-ms ($t s)" awk -v t="$t" 'BEGIN { exit !(t >= 0.29) }'

for row in "429 rate_limit_error" "400 invalid_request_error" "500 internal_server_error" \
    "401 authentication_error" "503 service_unavailable_error"; do
    set -- $row
    got=$("${C[@]}" -w ' %{http_code}' "$CHAT" -H "x-fake-status: $1" -d "$MSG}")
    expect_eq "x-fake-status $1" "{\"error\":{\"message\":\"fake error $1\",\"type\":\"$2\",\"param\":null,\"code\":\"$1\"}} $1" "$got"
done
got=$("${C[@]}" "$CHAT" -H 'x-fake-status: 429' -H 'x-fake-error-message: slow "down"' -d "$MSG}" | jq -r .error.message)
expect_eq "x-fake-error-message" 'slow "down"' "$got"

"${C[@]}" -D "$WORK/h" -o "$WORK/b" "$CHAT" -H 'x-fake-stream-error-status: 429' -d "$MSG,\"stream\":true}"
expect_eq "stream error status" "429" "$(head -n 1 "$WORK/h" | cut -d' ' -f2)"
expect_eq "stream error content-type" "text/event-stream; charset=utf-8" "$(hdr content-type)"
expect_eq "stream error body" "$(printf 'data: {"error":{"message":"fake error 429","type":"rate_limit_error","param":null,"code":"429"}}\n\n')" "$(cat "$WORK/b")"

got=$("${C[@]}" "$CHAT" -H 'x-fake-chunks: 5' -H 'x-fake-mid-stream-error: 2' -d "$MSG,\"stream\":true}")
expect_eq "mid-stream error: 2 chunks then the error" 2 "$(printf '%s\n' "$got" | grep -c '"content":"tok')"
expect_eq "mid-stream error event" 'data: {"error":{"message":"fake mid-stream error","type":"internal_server_error","param":null,"code":"500"}}' "$(printf '%s\n' "$got" | grep . | tail -n 1)"
expect_true "mid-stream error: no [DONE]" test "$(printf '%s\n' "$got" | grep -c DONE)" -eq 0
got=$("${C[@]}" "$B/v1/messages" -H 'x-fake-mid-stream-error: 1' -d "$AMSG,\"stream\":true}" | grep . | tail -n 2)
expect_eq "anthropic mid-stream error" 'event: error
data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}' "$got"
got=$("${C[@]}" "$B/v1/responses" -H 'x-fake-mid-stream-error: 1' -d '{"model":"r","input":"x","stream":true}' | grep . | tail -n 2)
expect_true "responses mid-stream error event" grep -q '^event: error$' <<<"$got"
expect_eq "responses error payload" '["error","server_error",5]' "$(tail -n 1 <<<"$got" | cut -c7- | jq -c '[.type, .code, .sequence_number]')"

set +e
"${C[@]}" --raw -o "$WORK/b" "$CHAT" -H 'x-fake-chunks: 5' -H 'x-fake-drop-after: 2' -d "$MSG,\"stream\":true}" 2>/dev/null
rc=$?
set -e
expect_eq "drop-after: curl sees a truncated reply (exit 18)" 18 "$rc"
expect_eq "drop-after: 2 content chunks arrived" 2 "$(grep -c '"content":"tok' "$WORK/b")"
expect_true "drop-after: no terminating chunk" test "$(tail -c 5 "$WORK/b" | od -An -c | tr -d ' ')" != '0\r\n\r\n'
expect_eq "drop-after: no finish chunk" 0 "$(grep -c finish_reason\":\"stop "$WORK/b" || true)"
got=$(curl -sS "$B/_fake/requests" | jq -c '.[-1] | [.chunks_sent, .finished, .client_closed, .dropped, (.closed_at_ms != null)]')
expect_eq "drop-after record" '[2,false,false,true,true]' "$got"
set +e
"${C[@]}" -o /dev/null "$CHAT" -H 'x-fake-drop-after: 2' -H 'x-fake-drop-mode: rst' -d "$MSG,\"stream\":true}" 2>/dev/null
rc=$?
set -e
expect_eq "drop-mode rst: connection reset (exit 56)" 56 "$rc"
set +e
"${C[@]}" -o "$WORK/b" "$CHAT" -H 'x-fake-drop-after: 0' -d "$MSG}" 2>/dev/null
rc=$?
set -e
expect_eq "drop-after on a non-stream reply (exit 18)" 18 "$rc"

got=$("${C[@]}" "$CHAT" -H 'x-fake-no-usage: 1' -d "$MSG,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" | grep -c usage || true)
expect_eq "x-fake-no-usage: no usage in the stream" 0 "$got"
expect_eq "x-fake-no-usage: non-stream" null "$("${C[@]}" "$CHAT" -H 'x-fake-no-usage: 1' -d "$MSG}" | jq -c .usage)"
got=$("${C[@]}" "$B/v1/responses" -H 'x-fake-no-usage: 1' -d '{"model":"r","input":"x","stream":true}' | grep '^data: ' | tail -n 1 | cut -c7- | jq -c '.response | has("usage")')
expect_eq "x-fake-no-usage: response.completed" false "$got"
got=$("${C[@]}" "$B/v1/messages" -H 'x-fake-no-usage: 1' -d "$AMSG,\"stream\":true}" | grep -c usage || true)
expect_eq "x-fake-no-usage: messages" 0 "$got"

got=$("${C[@]}" "$CHAT" -H 'x-fake-usage: 100,20,30,5' -d "$MSG,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" |
    sse_json | jq -c 'select(.usage) | .usage | [.prompt_tokens, .completion_tokens, .total_tokens, .prompt_tokens_details.cached_tokens, .completion_tokens_details.reasoning_tokens]')
expect_eq "x-fake-usage on chat" '[100,20,120,30,5]' "$got"
got=$("${C[@]}" "$B/v1/responses" -H 'x-fake-usage: 100,20,30,5' -d '{"model":"r","input":"x"}' | jq -c .usage)
expect_eq "x-fake-usage on responses" '{"input_tokens":100,"input_tokens_details":{"cached_tokens":30},"output_tokens":20,"output_tokens_details":{"reasoning_tokens":5},"total_tokens":120}' "$got"

got=$("${C[@]}" "$CHAT" -H 'x-fake-chunks: 3' -H 'x-fake-keepalive: 1' -d "$MSG,\"stream\":true}")
expect_eq "x-fake-keepalive: one comment per chunk" 3 "$(grep -c '^: keep-alive$' <<<"$got")"

"${C[@]}" -o "$WORK/b" "$CHAT" -H 'x-fake-chunks: 2' -H 'x-fake-crlf: 1' -d "$MSG,\"stream\":true}"
expect_eq "x-fake-crlf: every line ends in CR LF" "$(wc -l <"$WORK/b")" "$(grep -c $'\r$' "$WORK/b")"
expect_eq "x-fake-crlf: events end in CRLF CRLF" 5 "$(grep -c $'^\r$' "$WORK/b")"

plain=$("${C[@]}" "$CHAT" -H 'x-fake-chunks: 3' -d "$MSG,\"stream\":true}" | norm)
"${C[@]}" --trace-ascii "$WORK/trace" -o "$WORK/b" "$CHAT" -H 'x-fake-chunks: 3' -H 'x-fake-split-writes: 1' -d "$MSG,\"stream\":true}"
expect_eq "x-fake-split-writes: same bytes" "$plain" "$(norm <"$WORK/b")"
reads=$(grep -c '<= Recv data' "$WORK/trace")
expect_true "x-fake-split-writes: events arrive in several reads ($reads)" test "$reads" -ge 2

got=$("${C[@]}" "$CHAT" -H 'x-fake-finish-reason: length' -d "$MSG}" | jq -r '.choices[0].finish_reason')
expect_eq "x-fake-finish-reason" length "$got"
got=$("${C[@]}" "$CHAT" -d '{"model":"m","max_tokens":2,"messages":[]}' | jq -c '[.choices[0].message.content, .choices[0].finish_reason, .usage.completion_tokens]')
expect_eq "max_tokens cuts the reply" '["tok0 tok1 ","length",2]' "$got"

"${C[@]}" "$CHAT" -H 'x-fake-tool-calls: 1' -H 'x-fake-chunks: 3' \
    -d '{"model":"m","messages":[],"stream":true,"tools":[{"type":"function","function":{"name":"get_weather"}}]}' | sse_json >"$WORK/t"
expect_eq "tool call: name and id in the first fragment" '"get_weather"' "$(jq -c 'select(.choices[0].delta.tool_calls[0].id) | .choices[0].delta.tool_calls[0].function.name' "$WORK/t")"
expect_eq "tool call: arguments concatenate to JSON" '{"input":"tok0 tok1 tok2 "}' "$(jq -r '.choices[0].delta.tool_calls[0].function.arguments // empty' "$WORK/t" | tr -d '\n' | jq -c .)"
expect_eq "tool call: finish_reason" tool_calls "$(jq -r '.choices[0].finish_reason // empty' "$WORK/t")"

"${C[@]}" "$CHAT" -H 'x-fake-reasoning: 2' -H 'x-fake-chunks: 1' \
    -d "$MSG,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" | sse_json >"$WORK/t"
expect_eq "reasoning chunks" '"think0 ""think1 "' "$(jq -c '.choices[0].delta.reasoning_content // empty' "$WORK/t" | tr -d '\n')"
expect_eq "reasoning tokens in usage" '[3,2]' "$(jq -c 'select(.usage) | [.usage.completion_tokens, .usage.completion_tokens_details.reasoning_tokens]' "$WORK/t")"

got=$("${C[@]}" "$CHAT" -H 'x-fake-chunks: 2' -d '{"model":"m","n":2,"messages":[],"stream":true,"stream_options":{"include_usage":true}}' | sse_json |
    jq -c '[(.choices | length), (.usage.completion_tokens // null)]' | sort -u | tr '\n' ' ')
expect_eq "n=2: two choices per chunk, aggregate usage" '[0,4] [2,null] ' "$got"

expect_eq "invalid JSON: 400" '400 invalid_request_error' \
    "$("${C[@]}" -o "$WORK/b" -w '%{http_code}' "$CHAT" -d 'not json') $(jq -r .error.type "$WORK/b")"
expect_eq "invalid knob: 400" 400 "$("${C[@]}" -o /dev/null -w '%{http_code}' "$CHAT" -H 'x-fake-chunks: lots' -d "$MSG}")"
expect_eq "unknown route: 404 OpenAI error" '404 not_found_error' \
    "$("${C[@]}" -o "$WORK/b" -w '%{http_code}' "$B/v1/nothing" -d '{}') $(jq -r .error.type "$WORK/b")"
expect_eq "wrong method: 405" 405 "$("${C[@]}" -o /dev/null -w '%{http_code}' "$CHAT")"

# ---------------------------------------------------------------------------------------------
# Keep-alive, Connection: close, control routes

curl -sS -X DELETE "$B/_fake/stats" >/dev/null
curl -sS -X DELETE "$B/_fake/requests" >/dev/null
"${C[@]}" -o /dev/null "$CHAT" -d "$MSG}" --next -o /dev/null "$CHAT" -d "$MSG,\"stream\":true}" \
    --next -o /dev/null "$B/v1/models" --next -o /dev/null "$B/v1/embeddings" -d '{"input":"x"}' \
    --next -o /dev/null "$B/v1/messages" -d "$AMSG,\"stream\":true}"
got=$(curl -sS "$B/_fake/stats" | jq -c '[.connections_accepted, .requests, .open_connections]')
expect_eq "keep-alive: 5 requests on 1 connection" '[1,5,0]' "$got"
got=$(curl -sS "$B/_fake/requests" | jq -c '[length, ([.[].connection_id] | unique | length), ([.[].seq] | . == sort), [.[].path]]')
expect_eq "records: one connection, newest last" '[5,1,true,["/v1/chat/completions","/v1/chat/completions","/v1/models","/v1/embeddings","/v1/messages"]]' "$got"
got=$(curl -sS "$B/_fake/requests" | jq -c '.[1] | [.method, .body_json.stream, (.body | fromjson | .model), .headers["content-type"], .finished, .client_closed, .chunks_sent, .status, (.received_at_ms <= .closed_at_ms), (.call_id | length)]')
expect_eq "record fields" '["POST",true,"gpt-test","application/x-www-form-urlencoded",true,false,5,200,true,36]' "$got"
expect_eq "DELETE /_fake/requests" '{"cleared":5}' "$(curl -sS -X DELETE "$B/_fake/requests")"
expect_eq "records cleared" 0 "$(curl -sS "$B/_fake/requests" | jq length)"

"${C[@]}" -D "$WORK/h" -o /dev/null "$CHAT" -H 'x-fake-close: 1' -d "$MSG}"
expect_eq "x-fake-close: connection: close" close "$(hdr connection)"
wait_for 5 "the closed connection to be gone" \
    test "$(curl -sS "$B/_fake/stats" | jq .open_connections)" = 0 && pass

# Raw HTTP: pipelining, a chunked request body, HTTP/1.0.
exec 3<>"/dev/tcp/127.0.0.1/$FAKE_PORT"
printf 'POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n{"input":"a"}POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;e=1\r\n{"inp\r\n8\r\nut":"bcd\r\n2\r\n"}\r\n0\r\n\r\n' >&3
raw=$(timeout 10 cat <&3 | tr -d '\r')
exec 3<&-
expect_eq "pipelined requests: two replies" 2 "$(grep -o 'HTTP/1.1 200 OK' <<<"$raw" | wc -l | tr -d ' ')"
expect_eq "chunked request body decoded" '"bcd"' "$(curl -sS "$B/_fake/requests" | jq -c '.[-1].body_json.input')"
exec 3<>"/dev/tcp/127.0.0.1/$FAKE_PORT"
printf 'POST /v1/chat/completions HTTP/1.0\r\nContent-Length: 29\r\n\r\n{"model":"m10","stream":true}' >&3
raw=$(timeout 10 cat <&3 | tr -d '\r')
exec 3<&-
expect_true "HTTP/1.0 stream: close-delimited, not chunked" \
    test "$(grep -ci '^transfer-encoding' <<<"$raw")" -eq 0 -a "$(tail -n 1 <<<"$raw")" == "data: [DONE]"

# ---------------------------------------------------------------------------------------------
# Client close mid-stream is recorded, with its time

set +e
"${C[@]}" --max-time 0.5 -o /dev/null "$CHAT" -H 'x-fake-chunks: 50' -H 'x-fake-delay-ms: 100' -d "$MSG,\"stream\":true}" 2>/dev/null
set -e
closed() { [ "$(curl -sS "$B/_fake/requests" | jq '.[-1].client_closed')" = true ]; }
wait_for 5 "the client close to be recorded" closed && pass
got=$(curl -sS "$B/_fake/requests" | jq -c '.[-1] | [.finished, (.chunks_sent > 0 and .chunks_sent < 50), (.closed_at_ms - .received_at_ms >= 400)]')
expect_eq "client close record" '[false,true,true]' "$got"

# ---------------------------------------------------------------------------------------------
# Backpressure: 100000 chunks of 1000 bytes to a reader that stalls, memory must stay flat

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$MAIN_PID/status"; }
mkfifo "$WORK/fifo"
"${C[@]}" --max-time 120 -o "$WORK/fifo" "$CHAT" -H 'x-fake-chunks: 100000' -H 'x-fake-chunk-bytes: 1000' \
    -d '{"model":"big","stream":true}' &
BIG=$!
exec 4<"$WORK/fifo"
sent() { curl -sS "$B/_fake/requests" | jq '.[-1].chunks_sent'; }
prev=-1
stalled() {
    local now
    now=$(sent)
    [ "$now" -gt 0 ] && [ "$now" = "$prev" ] && return 0
    prev=$now
    sleep 0.2
    return 1
}
wait_for 30 "the stalled stream to stop growing" stalled
rss=$(rss_kb)
expect_true "backpressure: the fake stops producing ($prev of 100000 chunks)" test "$prev" -lt 50000
expect_true "backpressure: RSS stays small (${rss} kB)" test "$rss" -lt 65536
bytes=$(cat <&4 | tee >(tail -c 20 >"$WORK/tail") | wc -c | tr -d ' ')
exec 4<&-
wait "$BIG"
expect_true "big stream: all bytes arrived ($bytes)" test "$bytes" -gt 100000000
expect_eq "big stream: ends with [DONE]" "data: [DONE]" "$(tr -d '\n' <"$WORK/tail" | grep -o 'data: \[DONE\]')"
expect_eq "big stream: finished" '[100000,true]' "$(curl -sS "$B/_fake/requests" | jq -c '.[-1] | [.chunks_sent, .finished]')"

# ---------------------------------------------------------------------------------------------
# The --record file and a clean SIGTERM

kill -TERM "$MAIN_PID"
set +e
wait "$MAIN_PID"
rc=$?
set -e
expect_eq "SIGTERM: exit 0" 0 "$rc"
lines=$(wc -l <"$WORK/record.jsonl" | tr -d ' ')
expect_true "record file has one line per request ($lines)" test "$lines" -gt 60
expect_eq "record file lines are records" "$lines" \
    "$(jq -c 'select(.seq > 0 and .method and .path and (.headers | type == "object") and (.body | type == "string") and has("body_json") and .connection_id and .received_at_ms and has("chunks_sent") and has("finished") and has("client_closed") and has("closed_at_ms"))' "$WORK/record.jsonl" | wc -l | tr -d ' ')"
expect_eq "record file: seqs are unique" "$lines" "$(jq .seq "$WORK/record.jsonl" | sort -u | wc -l | tr -d ' ')"

# ---------------------------------------------------------------------------------------------
# TLS and --require-key

"$SRC/tests/fake_upstream/gen_certs.sh" "$WORK/pki" >/dev/null
start_fake tls --tls-cert "$WORK/pki/server.pem" --tls-key "$WORK/pki/server.key" --require-key sk-fake \
    --models alpha,beta --default-chunks 3 --default-delay-ms 30
T=https://localhost:$FAKE_PORT
got=$("${C[@]}" --cacert "$WORK/pki/ca.pem" -H 'Authorization: Bearer sk-fake' "$T/v1/models" | jq -c '[.object, [.data[].id]]')
expect_eq "TLS with ca.pem, --models" '["list",["alpha","beta"]]' "$got"
got=$("${C[@]}" --cacert "$WORK/pki/ca.pem" -H 'x-api-key: sk-fake' "https://127.0.0.1:$FAKE_PORT/v1/models" | jq -r .object)
expect_eq "TLS on the IP address, x-api-key" list "$got"
set +e
"${C[@]}" --cacert "$WORK/pki/other-ca.pem" -o /dev/null "$T/v1/models" 2>/dev/null
rc=$?
set -e
expect_eq "TLS with other-ca.pem fails verification (exit 60)" 60 "$rc"
got=$("${C[@]}" --cacert "$WORK/pki/ca.pem" -w ' %{http_code}' "$T/v1/models" | sed 's/.*"type":"\([a-z_]*\)".* \([0-9]*\)$/\1 \2/')
expect_eq "--require-key: 401 without the key" "authentication_error 401" "$got"
expect_eq "--require-key: wrong key" 401 "$("${C[@]}" --cacert "$WORK/pki/ca.pem" -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer sk-other' "$T/v1/models")"
expect_eq "health needs no key" 200 "$("${C[@]}" --cacert "$WORK/pki/ca.pem" -o /dev/null -w '%{http_code}' "$T/health/readiness")"
"${C[@]}" --cacert "$WORK/pki/ca.pem" -H 'x-api-key: sk-fake' -w '%{time_total}' -o "$WORK/b" \
    "$T/v1/chat/completions" -d "$MSG,\"stream\":true}" >"$WORK/t"
expect_eq "TLS stream with --default-chunks 3" 6 "$(grep -c '^data: ' "$WORK/b")"
expect_true "--default-delay-ms 30 ($(cat "$WORK/t") s)" awk -v t="$(cat "$WORK/t")" 'BEGIN { exit !(t >= 0.089) }'
set +e
"${C[@]}" --cacert "$WORK/pki/ca.pem" -o /dev/null -H 'x-api-key: sk-fake' "$T/v1/chat/completions" \
    -H 'x-fake-drop-after: 1' -d "$MSG,\"stream\":true}" 2>/dev/null
rc=$?
set -e
expect_eq "TLS drop-after (exit 18)" 18 "$rc"
kill -TERM "$FAKE_PID"
set +e
wait "$FAKE_PID"
rc=$?
set -e
expect_eq "TLS instance: SIGTERM exit 0" 0 "$rc"

if [ "$FAILS" -gt 0 ]; then
    for log in "$WORK"/*/log; do
        echo "--- $log" >&2
        tail -n 50 "$log" >&2
    done
fi

echo "test_fake_upstream: $((CHECKS - FAILS))/$CHECKS checks passed"
[ "$FAILS" -eq 0 ]

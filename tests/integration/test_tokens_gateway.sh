#!/usr/bin/env bash
# Issue 9 §3-§4: when the gateway reports no usage, the prompt tollgate bills is exactly what
# `tollgate tokens --messages --model M` prints for the same body, and the completion is exactly
# `tollgate tokens --model M` of the text the client received — for an o200k model (gpt-4o) and
# a cl100k one (gpt-4), whose counts differ on this text, so the model's encoding is used
# throughout (a prompt counted in the wrong encoding fails here).
source "$(dirname "$0")/lib.sh"

start_fake
DB_URL=$(new_db tokens)
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY

AUTH=(-H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: tok-user" -H "Content-Type: application/json")

# A conversation with accents, CJK, emoji, a name, a multi-part content and a tool call: each
# segment is tokenised on its own, so a counter that carries one encoding across segments and
# another within them gives a different figure.
body_for() { # MODEL STREAM
    jq -cn --arg m "$1" --argjson s "$2" '{
      model: $m, stream: $s,
      messages: [
        {role: "system", content: "Você é um assistente útil. Responda em português, por favor."},
        {role: "user", name: "ana_maria", content: "Quanto custa a ligação para São Paulo? 价格是多少？ 🙂"},
        {role: "assistant", content: null, tool_calls: [{id: "call_1", type: "function",
          function: {name: "get_price", arguments: "{\"city\":\"São Paulo\",\"unit\":\"BRL\"}"}}]},
        {role: "tool", tool_call_id: "call_1", content: "{\"price\": 12.50, \"currency\": \"BRL\"}"},
        {role: "user", content: [{type: "text", text: "E para 東京 (Tóquio)?"},
                                 {type: "text", text: "    indentação     e   espaços   "}]}
      ]}'
}

declare -A PROMPT
for model in gpt-4o gpt-4; do
    body=$(body_for "$model" false)
    want=$(printf '%s' "$body" | "$TOLLGATE_BIN" tokens --messages --model "$model")
    [[ "$want" =~ ^[0-9]+$ ]] && [ "$want" -gt 40 ] || fail "$model: tollgate tokens --messages printed '$want'"
    PROMPT[$model]=$want

    # non-streamed, no usage from the gateway: prompt and completion are tollgate's counts
    reply=$(curl_tg "$TG_URL/v1/chat/completions" "${AUTH[@]}" -H "x-fake-no-usage: 1" \
        -H "X-Request-Id: tok-$model-plain" -d "$body")
    assert_eq 200 "$(status)" "$model: status"
    [ "$(echo "$reply" | jq 'has("usage")')" = false ] || fail "$model: the fake sent usage"
    line=$(log_for_client "tok-$model-plain")
    assert_eq estimated "$(echo "$line" | jq -r .count_source)" "$model: count source"
    assert_eq "$want" "$(echo "$line" | jq -r .prompt_tokens)" "$model: billed prompt = tollgate tokens --messages"
    text=$(echo "$reply" | jq -j '.choices[0].message.content')
    [ -n "$text" ] || fail "$model: empty reply text"
    got_c=$(printf '%s' "$text" | "$TOLLGATE_BIN" tokens --model "$model")
    assert_eq "$got_c" "$(echo "$line" | jq -r .completion_tokens)" "$model: billed completion = tollgate tokens of the reply"

    # streamed, no usage: the completion is counted from the deltas the client received
    sbody=$(body_for "$model" true)
    curl_tg -N "$TG_URL/v1/chat/completions" "${AUTH[@]}" -H "x-fake-no-usage: 1" \
        -H "x-fake-chunks: 12" -H "X-Request-Id: tok-$model-stream" -d "$sbody" >"$T/stream-$model.txt"
    assert_eq 200 "$(status)" "$model: stream status"
    deltas=$(sed -n 's/^data: //p' "$T/stream-$model.txt" | grep -v '^\[DONE\]' |
        jq -j '.choices[0].delta.content // empty')
    [ -n "$deltas" ] || fail "$model: no delta text in the stream"
    line=$(log_for_client "tok-$model-stream")
    assert_eq estimated "$(echo "$line" | jq -r .count_source)" "$model: stream count source"
    assert_eq "$want" "$(echo "$line" | jq -r .prompt_tokens)" "$model: stream prompt"
    got_c=$(printf '%s' "$deltas" | "$TOLLGATE_BIN" tokens --model "$model")
    assert_eq "$got_c" "$(echo "$line" | jq -r .completion_tokens)" "$model: stream completion = tollgate tokens of the deltas"
    log "ok: $model prompt $want, stream completion $got_c"
done

# the two encodings really differ on this body (otherwise the test above proves nothing)
[ "${PROMPT[gpt-4o]}" != "${PROMPT[gpt-4]}" ] ||
    fail "gpt-4o and gpt-4 counted the same (${PROMPT[gpt-4o]}): the body does not tell the encodings apart"
log "PASS: prompt and completion estimates equal tollgate tokens for o200k (${PROMPT[gpt-4o]}) and cl100k (${PROMPT[gpt-4]})"

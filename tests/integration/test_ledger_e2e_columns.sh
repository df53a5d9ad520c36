#!/usr/bin/env bash
# Issue 6 item 1, end to end: real HTTP clients → tollgate → the fake upstream. Every metered
# request gives exactly one ledger row, and every SPEC §6 column of it is what it must be:
# request_id = the X-Request-Id the client got (a UUIDv7 whose time is started_at), user and
# team (users table, JWT team claim), model, canonical route (also for paths without /v1),
# status ok / upstream_error / client_aborted / blocked, the tokens the client was told,
# cost_usd from model_prices at started_at (NULL for an unpriced model, 0 when blocked),
# count_source, upstream_status, timings, upstream_call_id = the fake's x-litellm-call-id,
# client_request_id = the client's X-Request-Id (reused ids give separate rows).
source "$(dirname "$0")/lib_ledger.sh"

JWT_SECRET_VALUE=ledger-e2e-jwt-secret-0123456789abcdef
start_fake
use_new_db lcols
psql_db "$DB_URL" <<'SQL'
INSERT INTO teams (id, name) VALUES ('team-a', 'Team A');
INSERT INTO users (id, team_id) VALUES ('alice', 'team-a');
INSERT INTO model_prices (model, input_usd_per_mtok, cached_input_usd_per_mtok, output_usd_per_mtok, effective_from) VALUES
  ('gpt-4o-mini', 0.5, 0.5, 2.0, '1999-01-01Z'),          -- superseded
  ('gpt-4o-mini', 0.15, 0.075, 0.60, '2000-01-01Z'),      -- in effect
  ('gpt-4o-mini', 9, 9, 9, '2100-01-01Z'),                -- not yet in effect
  ('text-embedding-3-small', 0.02, NULL, 0, '2000-01-01Z'), -- cached NULL = input price
  ('gpt-3.5-turbo-instruct', 1.5, NULL, 2.0, '2000-01-01Z');
SQL
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY JWT_SECRET=$JWT_SECRET_VALUE
MAIN_URL=$TG_URL MAIN_LOG=$TG_LOG

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
make_jwt() { # sub team
    local h p s
    h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
    p=$(printf '{"sub":"%s","team":"%s","exp":%d}' "$1" "$2" $(($(date +%s) + 3600)) | b64url)
    s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$JWT_SECRET_VALUE" -binary | b64url)
    echo "$h.$p.$s"
}

now_ms() { date +%s%3N; }
SVC=(-H "Authorization: Bearer $SERVICE_KEY")

# call NAME PATH BODY CURL_ARGS...: one request; keeps its head, body, timing and the id
call() {
    local name=$1 path=$2 body=$3; shift 3
    local before after total
    before=$(now_ms)
    total=$(curl -sS -D "$T/$name.h" -o "$T/$name.body" -w '%{time_total}' "$TG_URL$path" \
        -H 'Content-Type: application/json' "$@" -d "$body" 2>"$T/$name.curl.err") || true
    after=$(now_ms)
    local rid
    rid=$(grep -i '^x-request-id:' "$T/$name.h" | head -n 1 | cut -d: -f2- | tr -d '\r ')
    [ -n "$rid" ] || fail "$name: no X-Request-Id in the reply: $(cat "$T/$name.h" "$T/$name.curl.err")"
    echo "$rid" >"$T/$name.rid"
    echo "$rid" >>"$T/all.rids"
    echo "$TG_LOG" >"$T/$name.tglog"
    echo "$before $after $(awk -v t="${total:-0}" 'BEGIN{printf "%d", t * 1000 + 1}')" >"$T/$name.time"
}
hdr() { { grep -i "^$2:" "$T/$1.h" || true; } | head -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'; }
http_status() { head -n 1 "$T/$1.h" | awk '{print $2}'; }
sse_json() { sed -n 's/^data: //p' "$T/$1.body" | tr -d '\r' | grep -v '^\[DONE\]$'; }

# told NAME KIND: "prompt completion cached reasoning total" as the client was told them
told() {
    local name=$1 kind=$2
    case $kind in
    chat | embeddings)
        jq -r '.usage | "\(.prompt_tokens) \(.completion_tokens // 0) \(.prompt_tokens_details.cached_tokens // 0) \(.completion_tokens_details.reasoning_tokens // 0) \(.total_tokens)"' "$T/$name.body" ;;
    chat_stream | completions_stream)
        sse_json "$name" | jq -r 'select(.usage != null) | .usage |
            "\(.prompt_tokens) \(.completion_tokens) \(.prompt_tokens_details.cached_tokens // 0) \(.completion_tokens_details.reasoning_tokens // 0) \(.total_tokens)"' | tail -n 1 ;;
    responses_stream)
        sse_json "$name" | jq -r 'select(.type == "response.completed") | .response.usage |
            "\(.input_tokens) \(.output_tokens) \(.input_tokens_details.cached_tokens // 0) \(.output_tokens_details.reasoning_tokens // 0) \(.total_tokens)"' ;;
    messages)
        jq -r '.usage | (.input_tokens + (.cache_read_input_tokens // 0) + (.cache_creation_input_tokens // 0)) as $p |
            "\($p) \(.output_tokens) \(.cache_read_input_tokens // 0) 0 \($p + .output_tokens)"' "$T/$name.body" ;;
    messages_stream)
        local start out
        start=$(sse_json "$name" | jq -r 'select(.type == "message_start") | .message.usage |
            "\(.input_tokens + (.cache_read_input_tokens // 0) + (.cache_creation_input_tokens // 0)) \(.cache_read_input_tokens // 0)"')
        out=$(sse_json "$name" | jq -r 'select(.type == "message_delta") | .usage.output_tokens' | tail -n 1)
        set -- $start
        echo "$1 $out $2 0 $(($1 + out))" ;;
    esac
}

# ---- the requests ---------------------------------------------------------------------------
chat='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, how are you today?"}]}'
chat_s='{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello"}]}'
chat_s_plain='{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Tell me a long story."}]}'
compl_s='{"model":"gpt-3.5-turbo-instruct","prompt":"Say hi","stream":true,"stream_options":{"include_usage":true}}'
emb='{"model":"text-embedding-3-small","input":["alpha","beta"]}'
resp_s='{"model":"gpt-4o-mini","input":"Hello","stream":true}'
msgs='{"model":"claude-3-5-sonnet","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}'
msgs_s='{"model":"claude-3-5-sonnet","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"Hi"}]}'
ALICE=("${SVC[@]}" -H "X-Tollgate-User: alice")

call chat "/v1/chat/completions" "$chat" "${ALICE[@]}" -H 'X-Request-Id: dup-1' \
    -H 'x-fake-usage: 1000,200,300,50' -H 'x-fake-first-byte-delay-ms: 300'
call chat_stream "/chat/completions" "$chat_s" "${ALICE[@]}" -H 'X-Request-Id: dup-1' \
    -H 'x-fake-usage: 40,12,8,3' -H 'x-fake-chunks: 6' -H 'x-fake-delay-ms: 20'
call embeddings "/embeddings" "$emb" "${ALICE[@]}" -H 'x-fake-usage: 17,0,4'
call responses_stream "/responses" "$resp_s" "${ALICE[@]}" -H 'x-fake-usage: 55,21,11,7' -H 'x-fake-reasoning: 2'
call messages "/messages" "$msgs" "${ALICE[@]}" -H 'x-fake-usage: 90,33,20'
call messages_stream "/v1/messages" "$msgs_s" "${ALICE[@]}" -H 'x-fake-usage: 70,25,10'
call completions_stream "/v1/completions" "$compl_s" "${ALICE[@]}" -H 'x-fake-usage: 9,4'
call up500 "/v1/chat/completions" "$chat" "${ALICE[@]}" -H 'x-fake-status: 500'
call up_sse_429 "/v1/chat/completions" "$chat_s" "${ALICE[@]}" -H 'x-fake-stream-error-status: 429'
call midstream "/v1/chat/completions" "$chat_s_plain" "${ALICE[@]}" -H 'x-fake-mid-stream-error: 3'
# the client gives up after 1.5 s of a 5 s stream
call aborted "/v1/chat/completions" "$chat_s_plain" "${ALICE[@]}" -H 'x-fake-chunks: 50' \
    -H 'x-fake-delay-ms: 100' --max-time 1.5
call jwt "/v1/chat/completions" "$chat" -H "Authorization: Bearer $(make_jwt carol team-j)" \
    -H 'x-fake-usage: 8,3'
# blocked: a quota of 0 set in the table and announced as an admin change would be
call blocky_first "/v1/chat/completions" "$chat" "${SVC[@]}" -H 'X-Tollgate-User: blocky' -H 'x-fake-usage: 5,5'
psql_db "$DB_URL" -c "INSERT INTO quotas (subject_kind, subject_id, limit_tokens, period) VALUES ('user','blocky',0,'month')"
redis PUBLISH "${REDIS_PREFIX:-t$$:}invalidate" "user blocky" >/dev/null
blocked_ok() { # (a request served before the invalidation arrived is a regular one)
    call blocked "/v1/chat/completions" "$chat" "${SVC[@]}" -H 'X-Tollgate-User: blocky' -H 'X-Request-Id: blk'
    [ "$(http_status blocked)" = 402 ]
}
wait_until 10 "the quota block" blocked_ok
# an unreachable upstream: a second instance whose UPSTREAM_URL has nobody listening
DEAD_PORT=$(free_port)
UPSTREAM="http://127.0.0.1:$DEAD_PORT" start_tollgate dead TOLLGATE_SERVICE_KEY=$SERVICE_KEY
DEAD_URL=$TG_URL
call unreachable "/v1/chat/completions" "$chat" "${ALICE[@]}"
TG_URL=$MAIN_URL TG_LOG=$MAIN_LOG
# not billable: no user could be named (no row: user_id is NOT NULL)
curl -sS -o /dev/null -D "$T/h" "$TG_URL/v1/chat/completions" -H 'Authorization: Bearer wrong-key-0123456789' \
    -H 'Content-Type: application/json' -d "$chat"
assert_eq 401 "$(status)" "a bad key"

assert_eq 200 "$(http_status chat)" "chat status"
assert_eq 200 "$(http_status chat_stream)" "chat stream status"
assert_eq 500 "$(http_status up500)" "upstream 500"
assert_eq 429 "$(http_status up_sse_429)" "first-event stream error"
assert_eq 502 "$(http_status unreachable)" "unreachable upstream"
assert_eq 402 "$(http_status blocked)" "blocked"
assert_eq 200 "$(http_status aborted)" "aborted stream head"

# ---- the ledger -----------------------------------------------------------------------------
wait_until 20 "the ledger to drain (main)" ledger_drained "$MAIN_URL"
wait_until 20 "the ledger to drain (dead upstream)" ledger_drained "$DEAD_URL"
FAKE_RECORDS=$(curl -fsS "$FAKE_URL/_fake/requests")

# row NAME: the row of that request as JSON (exactly one, or fail)
row() {
    local rid n
    rid=$(cat "$T/$1.rid")
    n=$(psql_db "$DB_URL" -c "SELECT count(*) FROM ledger WHERE request_id = '$rid'")
    assert_eq 1 "$n" "$1: rows with request_id $rid"
    psql_db "$DB_URL" -c "SELECT row_to_json(l) FROM (SELECT *, (extract(epoch FROM started_at) * 1000)::bigint AS started_ms,
        (extract(epoch FROM finished_at) * 1000000)::bigint AS finished_us FROM ledger WHERE request_id = '$rid') l"
}
col() { jq -r ".$2" <<<"$1"; }

# cost PROMPT COMPLETION CACHED INPUT CACHED_INPUT OUTPUT: the exact price (bc, 20 decimals)
cost() {
    echo "scale=20; (($1 - $3) * $4 + $3 * $5 + $2 * $6) / 1000000" | bc
}

# check NAME user team model route status count_source upstream_status "p c ca re t" cost_expr
check() {
    local name=$1 user=$2 team=$3 model=$4 route=$5 st=$6 src=$7 ups=$8 tokens=$9 want_cost=${10}
    local r rid
    r=$(row "$name")
    rid=$(cat "$T/$name.rid")
    # request_id: tollgate's UUIDv7, and started_at is its 48-bit millisecond time
    [[ $rid =~ ^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] ||
        fail "$name: X-Request-Id $rid is not a UUIDv7"
    assert_eq "$rid" "$(col "$r" request_id)" "$name: request_id"
    local id_ms=$((16#${rid:0:8}${rid:9:4}))
    assert_eq "$id_ms" "$(col "$r" started_ms)" "$name: started_at = the UUIDv7 time"
    local before after total
    read -r before after total <"$T/$name.time"
    [ "$id_ms" -ge $((before - 5)) ] && [ "$id_ms" -le "$after" ] ||
        fail "$name: started_at $id_ms outside the client's request [$before, $after]"
    assert_eq "$user" "$(col "$r" user_id)" "$name: user_id"
    assert_eq "$team" "$(col "$r" team_id)" "$name: team_id"
    assert_eq "$model" "$(col "$r" model)" "$name: model"
    assert_eq "$route" "$(col "$r" route)" "$name: route"
    assert_eq "$st" "$(col "$r" status)" "$name: status"
    assert_eq "$src" "$(col "$r" count_source)" "$name: count_source"
    assert_eq "$ups" "$(col "$r" upstream_status)" "$name: upstream_status"
    local p c ca re t
    read -r p c ca re t <<<"$tokens"
    assert_eq "$p $c $ca $re $t" "$(jq -r '"\(.prompt_tokens) \(.completion_tokens) \(.cached_tokens) \(.reasoning_tokens) \(.total_tokens)"' <<<"$r")" "$name: tokens"
    assert_eq $((p + c)) "$t" "$name: total = prompt + completion"
    if [ "$want_cost" = null ]; then
        assert_eq null "$(col "$r" cost_usd)" "$name: cost_usd"
    else
        local same
        same=$(psql_db "$DB_URL" -c "SELECT cost_usd = ($want_cost)::numeric FROM ledger WHERE request_id = '$rid'")
        assert_eq t "$same" "$name: cost_usd $(col "$r" cost_usd) = $want_cost"
    fi
    # timings: finished_at - started_at is the latency (same clock reading at the finish),
    # ttfb <= latency, and tollgate's latency fits inside the client's own measurement
    local fin_us lat ttfb
    fin_us=$(col "$r" finished_us)
    lat=$(col "$r" latency_ms)
    ttfb=$(col "$r" ttfb_ms)
    [ "$fin_us" -ge $((id_ms * 1000)) ] || fail "$name: finished_at before started_at"
    local d=$(((fin_us - id_ms * 1000) / 1000 - lat))
    [ "${d#-}" -le 50 ] || fail "$name: finished_at - started_at differs from latency_ms $lat by $d ms"
    [ "$lat" -le "$total" ] || fail "$name: latency_ms $lat > the client's $total ms"
    if [ "$ttfb" != null ]; then
        [ "$ttfb" -ge 0 ] && [ "$ttfb" -le "$lat" ] || fail "$name: ttfb_ms $ttfb vs latency_ms $lat"
    fi
    # upstream_call_id: the x-litellm-call-id of the fake's reply to this very request
    local call
    call=$(jq -r --arg rid "$rid" '[.[] | select(.headers["x-request-id"] == $rid)] |
        if length == 1 then .[0].call_id else "records:\(length)" end' <<<"$FAKE_RECORDS")
    if [ "$ups" = null ]; then
        assert_eq "records:0" "$call" "$name: nothing reached the upstream"
        assert_eq null "$(col "$r" upstream_call_id)" "$name: upstream_call_id"
        assert_eq null "$ttfb" "$name: ttfb_ms without an upstream reply"
    else
        assert_eq "$call" "$(col "$r" upstream_call_id)" "$name: upstream_call_id = the fake's call id"
        local seen
        seen=$(hdr "$name" x-litellm-call-id)
        [ -z "$seen" ] || assert_eq "$seen" "$call" "$name: the call id the client saw"
    fi
    # the log line says the same
    local line
    line=$(log_for "$rid" "$(cat "$T/$name.tglog")")
    assert_eq "$p $c $ca $re $t $st" "$(jq -r '"\(.prompt_tokens) \(.completion_tokens) \(.cached_tokens) \(.reasoning_tokens) \(.total_tokens) \(.ledger_status)"' <<<"$line")" "$name: log line"
    log "ok: $name ($st, $p+$c tokens, cost $(col "$r" cost_usd))"
}

G=(0.15 0.075 0.60)
t=$(told chat chat); read -r p c ca re _ <<<"$t"
assert_eq "1000 200 300 50 1200" "$t" "chat: the usage the client was told"
check chat alice team-a gpt-4o-mini /v1/chat/completions ok upstream 200 "$t" "$(cost $p $c $ca "${G[@]}")"
ttfb=$(col "$(row chat)" ttfb_ms)
[ "$ttfb" -ge 300 ] || fail "chat: ttfb_ms $ttfb < the fake's 300 ms first-byte delay"

t=$(told chat_stream chat_stream); read -r p c ca re _ <<<"$t"
assert_eq "40 12 8 3 52" "$t" "chat stream: told"
check chat_stream alice team-a gpt-4o-mini /v1/chat/completions ok upstream 200 "$t" "$(cost $p $c $ca "${G[@]}")"

t=$(told embeddings embeddings); read -r p c ca re _ <<<"$t"
assert_eq "17 0 0 0 17" "$t" "embeddings: told"
check embeddings alice team-a text-embedding-3-small /v1/embeddings ok upstream 200 "$t" "$(cost $p $c $ca 0.02 0.02 0)"

t=$(told responses_stream responses_stream); read -r p c ca re _ <<<"$t"
assert_eq "55 21 11 7 76" "$t" "responses: told"
check responses_stream alice team-a gpt-4o-mini /v1/responses ok upstream 200 "$t" "$(cost $p $c $ca "${G[@]}")"

t=$(told messages messages)
assert_eq "90 33 20 0 123" "$t" "messages: told"
check messages alice team-a claude-3-5-sonnet /v1/messages ok upstream 200 "$t" null

t=$(told messages_stream messages_stream)
assert_eq "70 25 10 0 95" "$t" "messages stream: told"
check messages_stream alice team-a claude-3-5-sonnet /v1/messages ok upstream 200 "$t" null

t=$(told completions_stream completions_stream); read -r p c ca re _ <<<"$t"
assert_eq "9 4 0 0 13" "$t" "completions: told"
check completions_stream alice team-a gpt-3.5-turbo-instruct /v1/completions ok upstream 200 "$t" "$(cost $p $c $ca 1.5 1.5 2.0)"

# errors: nothing produced → zero tokens, counted by tollgate
check up500 alice team-a gpt-4o-mini /v1/chat/completions upstream_error estimated 500 "0 0 0 0 0" 0
check up_sse_429 alice team-a gpt-4o-mini /v1/chat/completions upstream_error estimated 429 "0 0 0 0 0" 0
check unreachable alice team-a gpt-4o-mini /v1/chat/completions upstream_error estimated null "0 0 0 0 0" 0
# a stream cut by an upstream error and one the client left: tollgate's own count of what was
# produced (the client was told no usage); both must have produced completion tokens
for name in midstream aborted; do
    line=$(log_for "$(cat "$T/$name.rid")" "$MAIN_LOG")
    t=$(jq -r '"\(.prompt_tokens) \(.completion_tokens) \(.cached_tokens) \(.reasoning_tokens) \(.total_tokens)"' <<<"$line")
    read -r p c ca re _ <<<"$t"
    [ "$p" -gt 0 ] && [ "$c" -gt 0 ] || fail "$name: expected estimated prompt and completion tokens, got $t"
    st=upstream_error
    [ "$name" = aborted ] && st=client_aborted
    check "$name" alice team-a gpt-4o-mini /v1/chat/completions $st estimated 200 "$t" "$(cost $p $c $ca "${G[@]}")"
done
sent=$(jq -r --arg rid "$(cat "$T/aborted.rid")" '.[] | select(.headers["x-request-id"] == $rid) | .chunks_sent' <<<"$FAKE_RECORDS")
[ "$sent" -lt 50 ] || fail "aborted: the upstream stream was not cancelled ($sent chunks sent)"

t=$(told jwt chat); read -r p c ca re _ <<<"$t"
check jwt carol team-j gpt-4o-mini /v1/chat/completions ok upstream 200 "$t" "$(cost $p $c $ca "${G[@]}")"
t=$(told blocky_first chat); read -r p c ca re _ <<<"$t"
check blocky_first blocky null gpt-4o-mini /v1/chat/completions ok upstream 200 "$t" "$(cost $p $c $ca "${G[@]}")"
# blocked: zero tokens, zero cost (not NULL), nothing sent upstream
check blocked blocky null gpt-4o-mini /v1/chat/completions blocked estimated null "0 0 0 0 0" 0
assert_eq blk "$(col "$(row blocked)" client_request_id)" "blocked: client_request_id"

# client_request_id: the client's X-Request-Id, never the key — "dup-1" twice, two rows
assert_eq "dup-1 dup-1" "$(col "$(row chat)" client_request_id) $(col "$(row chat_stream)" client_request_id)" "client_request_id"
assert_eq 2 "$(psql_db "$DB_URL" -c "SELECT count(DISTINCT request_id) FROM ledger WHERE client_request_id = 'dup-1'")" "rows for the reused client id"
assert_eq null "$(col "$(row embeddings)" client_request_id)" "no client id → NULL"

# exactly one row per request: the ledger holds these requests and nothing else
want=$(sort -u "$T/all.rids")
got=$(psql_db "$DB_URL" -c "SELECT request_id FROM ledger ORDER BY 1")
assert_eq "$want" "$got" "the ledger's request ids"
assert_eq "$(echo "$want" | wc -l)" "$(psql_db "$DB_URL" -c "SELECT count(*) FROM ledger")" "one row per request"
# the unpriced model is counted (cost NULL, never a wrong number)
assert_eq 2 "$(metric tollgate_ledger_rows_unpriced_total "$MAIN_URL")" "unpriced rows metric"
log "PASS ($(echo "$want" | wc -l) requests, one row each)"

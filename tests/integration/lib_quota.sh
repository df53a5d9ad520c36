# shellcheck shell=bash
# lib_quota.sh: helpers for the quota end-to-end tests (issue 5), sourced after lib.sh.
# Quotas are written with SQL and announced on the invalidation channel (the admin API is not
# used). Tests that stop or restart Redis start their own redis-server (own_redis_*), never the
# shared fixture's.

# The Redis port the helpers talk to (own_redis_start switches it).
Q_REDIS_PORT=${Q_REDIS_PORT:-$TG_TEST_REDIS_PORT}
Q_PREFIX=${REDIS_PREFIX:-t$$:}

qredis() {
    redis-cli -p "$Q_REDIS_PORT" "$@"
}

# invalidate MSG: what the admin API does after a change ("user <id>", "all").
invalidate() {
    qredis PUBLISH "${Q_PREFIX}invalidate" "$1" >/dev/null
}

# ensure_user ID [TEAM]: the users row (as if seen before), with its team.
ensure_user() {
    local team=${2:-}
    psql_db "$DB_URL" -v id="$1" -v team="$team" >/dev/null <<'SQL'
INSERT INTO users (id, team_id) VALUES (:'id', NULLIF(:'team', ''))
ON CONFLICT (id) DO UPDATE SET team_id = EXCLUDED.team_id;
SQL
}

# set_quota KIND ID LIMIT [PERIOD]: KIND user|team|default (ID "" for default); LIMIT may be
# "null" (back to the default). Invalidates every cache.
set_quota() {
    local kind=$1 id=$2 limit=$3 period=${4:-}
    psql_db "$DB_URL" -v kind="$kind" -v id="$id" -v lim="$limit" -v per="$period" >/dev/null <<'SQL'
INSERT INTO quotas (subject_kind, subject_id, limit_tokens, period)
VALUES (:'kind', :'id', NULLIF(:'lim', 'null')::bigint, NULLIF(:'per', ''))
ON CONFLICT (subject_kind, subject_id)
DO UPDATE SET limit_tokens = EXCLUDED.limit_tokens, period = EXCLUDED.period;
SQL
    invalidate all
}

# chat_body [STREAM true|false] [MAX_TOKENS] [CONTENT]: a small chat request body.
chat_body() {
    local stream=${1:-true} max=${2:-16} content=${3:-hi}
    jq -cn --argjson s "$stream" --argjson m "$max" --arg c "$content" \
        '{model:"gpt-4o-mini",stream:$s,max_tokens:$m,messages:[{role:"user",content:$c}]}'
}

# as_user USER URL_PATH [curl args...]: an authenticated POST (service key + X-Tollgate-User)
# through tollgate; headers in $T/h, body on stdout. Body from -d in the args.
as_user() {
    local user=$1 path=$2; shift 2
    curl_tg "$TG_URL$path" -H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: $user" \
        -H 'Content-Type: application/json' "$@"
}

# chat USER [STREAM] [MAX_TOKENS] [curl args...]: one chat request; body on stdout.
chat() {
    local user=$1 stream=${2:-true} max=${3:-16}
    shift $(($# < 3 ? $# : 3))
    as_user "$user" /v1/chat/completions -d "$(chat_body "$stream" "$max")" "$@"
}

# get_quota USER: GET /v1/quota as USER (JSON on stdout, headers in $T/h).
get_quota() {
    curl_tg "$TG_URL/v1/quota" -H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: $1"
}

ledger_sum() { # USER: SUM(total_tokens) of the user's rows
    psql_db "$DB_URL" -c "SELECT COALESCE(SUM(total_tokens),0) FROM ledger WHERE user_id = '$1'"
}

ledger_count() { # USER [STATUS]
    local where="user_id = '$1'"
    [ -n "${2:-}" ] && where="$where AND status = '$2'"
    psql_db "$DB_URL" -c "SELECT count(*) FROM ledger WHERE $where"
}

outbox_count() { # SUBJECT: webhook_outbox rows of the subject
    psql_db "$DB_URL" -c "SELECT count(*) FROM webhook_outbox WHERE subject_id = '$1'"
}

# wait_ledger USER N: until the user has N ledger rows.
wait_ledger() {
    wait_until 20 "$2 ledger rows for $1" test_ledger_count "$1" "$2"
}
test_ledger_count() { [ "$(ledger_count "$1")" -ge "$2" ]; }

# quota_key USER|TEAM KIND: the Redis hash of the subject's current period (the one key of the
# subject that has neither :rz nor :pre); empty when missing.
quota_key() {
    local kind=${2:-u}
    qredis --scan --pattern "${Q_PREFIX}{$kind:$1}:*" | grep -v -e ':rz$' -e ':pre$' | head -n 1
}

redis_used() { # USER [KIND]: the period hash's used field ("" when missing)
    local k
    k=$(quota_key "$1" "${2:-u}")
    [ -n "$k" ] || { echo ""; return 0; }
    qredis HGET "$k" used
}

redis_res() { # USER [KIND]: the period hash's reserved field
    local k
    k=$(quota_key "$1" "${2:-u}")
    [ -n "$k" ] || { echo ""; return 0; }
    qredis HGET "$k" res
}

fake_requests() { # number of POST requests (the metered routes) the fake upstream recorded
    curl -fsS "$FAKE_URL/_fake/requests" | jq '[.[] | select(.method == "POST")] | length'
}

fake_clear() {
    curl -fsS -X DELETE "$FAKE_URL/_fake/requests" >/dev/null
    curl -fsS -X DELETE "$FAKE_URL/_fake/stats" >/dev/null
}

# ---- a redis-server of the test's own (for stop/start tests) ---------------------------------

# own_redis_start [PORT] [extra redis-server args]: starts it (again, on the same port when
# given) without persistence; sets OWN_REDIS_PORT, OWN_REDIS_PID, Q_REDIS_PORT.
own_redis_start() {
    local port=${1:-}
    shift || true
    [ -n "$port" ] || port=$(free_port)
    mkdir -p "$T/redis"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --dir "$T/redis" --logfile "$T/redis-own.log" "$@" </dev/null >/dev/null 2>&1 &
    OWN_REDIS_PID=$!
    TG_PIDS+=("$OWN_REDIS_PID")
    OWN_REDIS_PORT=$port
    Q_REDIS_PORT=$port
    wait_until 10 "own redis-server on $port" own_redis_ping
}
own_redis_ping() { redis-cli -p "$OWN_REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

# own_redis_stop: kills it (SIGKILL: nothing saved) and waits until the port is closed.
own_redis_stop() {
    kill -KILL "$OWN_REDIS_PID" 2>/dev/null || true
    wait "$OWN_REDIS_PID" 2>/dev/null || true
    wait_until 10 "own redis-server gone" own_redis_down
}
own_redis_down() { ! (exec 3<>"/dev/tcp/127.0.0.1/$OWN_REDIS_PORT") 2>/dev/null; }

# start_tollgate_own_redis NAME VAR=VALUE...: start_tollgate against the own redis-server.
start_tollgate_own_redis() {
    local name=$1; shift
    start_tollgate "$name" REDIS_URL="redis://127.0.0.1:$OWN_REDIS_PORT/0" "$@"
}

# The reset date as the messages write it, for the monthly UTC period: "1 December" (the year
# added when it is not this year's).
month_reset_words() {
    local next
    next=$(date -u -d "$(date -u +%Y-%m-01) +1 month" +%Y-%m-%d)
    if [ "${next:0:4}" = "$(date -u +%Y)" ]; then
        date -u -d "$next" '+%-d %B'
    else
        date -u -d "$next" '+%-d %B %Y'
    fi
}
month_reset_rfc3339() {
    date -u -d "$(date -u +%Y-%m-01) +1 month" +%Y-%m-%dT00:00:00Z
}
fmt_tokens() { # 1234567 -> 1,234,567
    local n=$1 out=""
    while [ ${#n} -gt 3 ]; do out=",${n: -3}$out"; n=${n:0:${#n}-3}; done
    echo "$n$out"
}
# notice_text PERCENT: the inline 80 % notice for the monthly period (as the model's text)
notice_text() {
    printf '\n\n> \xe2\x9a\xa0\xef\xb8\x8f You have used %s %% of your monthly AI quota; it resets on %s.' \
        "$1" "$(month_reset_words)"
}

# now_ms: wall clock in ms
now_ms() { date +%s%3N; }

# wait_eq SECONDS WHAT EXPECTED COMMAND...: until COMMAND's output is EXPECTED (re-run each time)
wait_eq() {
    local secs=$1 what=$2 want=$3; shift 3
    local deadline=$(( $(date +%s) + secs )) got
    while :; do
        got=$("$@" 2>/dev/null || true)
        [ "$got" = "$want" ] && return 0
        [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what: expected [$want], last [$got]"
        sleep 0.05
    done
}

# fake_running: number of POST requests the fake upstream is still answering
fake_running() {
    curl -fsS "$FAKE_URL/_fake/requests" | jq '[.[] | select(.method == "POST" and .finished == false and .client_closed == false and .dropped == false)] | length'
}
wait_fake_running() { # N
    wait_eq 20 "$1 stream(s) running at the upstream" "$1" fake_running
}

# sse_chunks FILE: the JSON of every data: event of an SSE body, as one array
sse_chunks() {
    grep '^data: {' "$1" | sed 's/^data: //' | jq -s .
}
# sse_text FILE: the streamed assistant text (all content deltas of choice 0, joined)
sse_text() {
    sse_chunks "$1" | jq -j '[.[] | .choices[0].delta.content? // empty] | join("")'
}
# notice_report FILE PERCENT: "<chunks carrying the notice> <1 if the last of them sits just
# before the finish chunk, else 0> <finish reason>"
notice_report() {
    sse_chunks "$1" | jq -r --arg n "$(notice_text "$2")" '
        [.[] | select((.choices | length) > 0)] as $c
        | ([$c[] | select(.choices[0].delta.content? == $n)] | length) as $count
        | ([range(0; $c | length) | select($c[.].choices[0].finish_reason != null)][0]) as $fin
        | (if $fin != null and $fin > 0 and $c[$fin - 1].choices[0].delta.content? == $n
           and $c[$fin - 1].choices[0].finish_reason == null then 1 else 0 end) as $before
        | "\($count) \($before) \(if $fin == null then "none" else $c[$fin].choices[0].finish_reason end)"'
}
# any_notice FILE: 1 when the body carries any notice-looking text, else 0
any_notice() {
    if grep -q 'of your [a-z]* *AI quota; it' "$1"; then echo 1; else echo 0; fi
}

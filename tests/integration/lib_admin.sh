# lib_admin.sh: helpers for the admin API tests (issue 8), sourced after lib.sh.
# Admin calls go through the API with TOLLGATE_ADMIN_KEY (or an admin JWT signed here with
# openssl); ledger rows are seeded with SQL (tests/fixtures/finance/uuid7.sql gives valid
# UUIDv7 request ids for any time).

: "${TG_SOURCE_DIR:?}"
ADMIN_JWT_SECRET=admin-test-secret-0123456789abcdef0123456789
CHAT_BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'

b64url() { # stdin -> base64url without padding
    basenc --base64url -w0 | tr -d '='
}

# jwt CLAIMS_JSON: an HS256 token signed with ADMIN_JWT_SECRET (exp: one hour from now unless
# the claims set it).
jwt() {
    local claims=$1 h p s
    if ! echo "$claims" | jq -e 'has("exp")' >/dev/null; then
        claims=$(echo "$claims" | jq -c --argjson e $(($(date +%s) + 3600)) '. + {exp: $e}')
    fi
    h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
    p=$(printf '%s' "$claims" | b64url)
    s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$ADMIN_JWT_SECRET" -binary | b64url)
    echo "$h.$p.$s"
}

# start_admin NAME [VAR=VALUE...]: tollgate with the admin key, the service key, JWTs and
# personal API keys enabled (sets TG_URL etc., see start_tollgate).
start_admin() {
    local name=$1; shift
    start_tollgate "$name" TOLLGATE_ADMIN_KEY="$ADMIN_KEY" TOLLGATE_SERVICE_KEY="$SERVICE_KEY" \
        JWT_SECRET="$ADMIN_JWT_SECRET" TOLLGATE_API_KEYS=on "$@"
}

# adm METHOD PATH [BODY] [curl args...]: an admin call with TOLLGATE_ADMIN_KEY against
# ${ADM_URL:-$TG_URL}; headers in $T/h, body on stdout.
adm() {
    local method=$1 path=$2 body=${3:-}
    shift $(($# < 3 ? $# : 3))
    if [ -n "$body" ]; then
        curl_tg -X "$method" "${ADM_URL:-$TG_URL}$path" -H "Authorization: Bearer $ADMIN_KEY" \
            -H 'Content-Type: application/json' --data-binary "$body" "$@"
    else
        curl_tg -X "$method" "${ADM_URL:-$TG_URL}$path" -H "Authorization: Bearer $ADMIN_KEY" "$@"
    fi
}

# adm_ok METHOD PATH [BODY]: adm, failing the test unless the status is 2xx; body on stdout.
adm_ok() {
    local out
    out=$(adm "$@")
    [[ "$(status)" == 2* ]] || fail "$1 $2: status $(status): $out"
    echo "$out"
}

# expect_error NAME STATUS PARAM BODY: the last reply is an OpenAI-shaped error with this
# status and error.param (PARAM "null" for none).
expect_error() {
    local name=$1 want=$2 param=$3 body=$4
    assert_eq "$want" "$(status)" "$name: status (body $body)"
    echo "$body" | jq -e '.error | (.message | type == "string" and length > 0) and
        (.type | type == "string") and has("param") and has("code")' >/dev/null ||
        fail "$name: not an OpenAI error body: $body"
    assert_eq "$param" "$(echo "$body" | jq -r '.error.param')" "$name: error.param"
}

# chat_user USER [curl args...]: a chat completion as USER with the service key through
# ${CHAT_URL:-$TG_URL}; prints the HTTP status only.
chat_user() {
    local user=$1; shift
    curl -s -o /dev/null -w '%{http_code}' "${CHAT_URL:-$TG_URL}/v1/chat/completions" \
        -H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: $user" \
        -H 'Content-Type: application/json' -d "$CHAT_BODY" "$@"
}

# chat_key KEY: a chat completion with a personal API key; prints the HTTP status only.
chat_key() {
    curl -s -o /dev/null -w '%{http_code}' "${CHAT_URL:-$TG_URL}/v1/chat/completions" \
        -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -d "$CHAT_BODY"
}

# load_uuid7 DB_URL: installs tg_test_uuid7(ts, seed) (tests/fixtures/finance/uuid7.sql).
load_uuid7() {
    psql_db "$1" -f "$TG_SOURCE_DIR/tests/fixtures/finance/uuid7.sql" >/dev/null
}

# seed_rows DB_URL USER TEAM MODEL COUNT FROM_MS STEP_MS PROMPT COMPLETION [SEED]: COUNT ledger
# rows of USER (TEAM "" = none) starting at FROM_MS (Unix ms), STEP_MS apart, each with PROMPT
# and COMPLETION tokens (cached = prompt / 4, reasoning = completion / 5); cost from
# tg_ledger_cost (the model's price then, or NULL).
seed_rows() {
    local url=$1 user=$2 team=$3 model=$4 count=$5 from=$6 step=$7 p=$8 c=$9 seed=${10:-0}
    psql_db "$url" -v user="$user" -v team="$team" -v model="$model" -v count="$count" \
        -v from="$from" -v step="$step" -v p="$p" -v c="$c" -v seed="$seed" >/dev/null <<'SQL'
INSERT INTO ledger (request_id, user_id, team_id, model, route, status, prompt_tokens,
                    completion_tokens, cached_tokens, reasoning_tokens, total_tokens, cost_usd,
                    count_source, upstream_status, started_at, finished_at, ttfb_ms, latency_ms)
SELECT tg_test_uuid7(t.ts, :seed::bigint * 100000000 + i), :'user', NULLIF(:'team', ''), :'model',
       '/v1/chat/completions', 'ok', :p::bigint, :c::bigint, :p::bigint / 4, :c::bigint / 5,
       :p::bigint + :c::bigint,
       tg_ledger_cost(:'model', t.ts, :p::bigint, :p::bigint / 4, :c::bigint),
       'upstream', 200, t.ts, t.ts + interval '250 ms', 40, 250
  FROM generate_series(0, :count::bigint - 1) AS i,
       LATERAL (SELECT timestamptz 'epoch' + (:from::bigint + i * :step::bigint)
                       * interval '1 millisecond' AS ts) AS t;
SQL
}

now_ms() { date +%s%3N; }

# rss_kb PID: resident set size in KiB
rss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# For wait_until (which runs its command again and again): the query's answer equals / is at
# least a value.
sql_is() { # DB_URL SQL WANT
    [ "$(psql_db "$1" -c "$2")" = "$3" ]
}
sql_ge() { # DB_URL SQL MIN
    [ "$(psql_db "$1" -c "$2")" -ge "$3" ]
}

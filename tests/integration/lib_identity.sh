# lib_identity.sh: helpers for the identity tests (issue 4), sourced after lib.sh.
# shellcheck shell=bash
# Tokens and keys are made here, never through the admin API: JWTs with node's crypto
# (tests/node/identity_jwt.mjs), personal API keys as rows inserted with SQL, revocation and
# disabling with SQL + a PUBLISH on the invalidation channel (what the admin API does).

: "${TG_SOURCE_DIR:?}"
JWT_TOOL="$TG_SOURCE_DIR/tests/node/identity_jwt.mjs"
JWKS_SERVER="$TG_SOURCE_DIR/tests/node/identity_jwks_server.mjs"
CHAT='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
GENERIC_401="Invalid credentials."

jwt() { # ALG KEY CLAIMS_JSON [HEADER_JSON]: a signed token (see identity_jwt.mjs)
    node "$JWT_TOOL" sign "$@"
}

make_keys() { # DIR: RSA and EC key pairs
    node "$JWT_TOOL" keys "$1"
}

make_jwks() { # KID=PUB[:ALG]...: a JWK Set document
    node "$JWT_TOOL" jwks "$@"
}

b64url() { # stdin -> base64url without padding
    basenc --base64url -w0 | tr -d '='
}

# new_user DB_URL ID [EMAIL]: a user row (what the admin API or a first request would create)
new_user() {
    psql_db "$1" -c "INSERT INTO users (id, email) VALUES ('$2', NULLIF('${3:-}', ''))
                     ON CONFLICT (id) DO NOTHING"
}

# new_api_key DB_URL USER_ID [NAME]: prints "KEY_ID KEY". The key is "tg-" + base64url of 32
# random bytes; only its SHA-256 (as bytea) is stored, as the admin API stores it.
new_api_key() {
    local url=$1 user=$2 name=${3:-test} key hash id
    key="tg-$(openssl rand 32 | b64url)"
    [ "${#key}" = 46 ] || fail "generated key has length ${#key}"
    hash=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
    new_user "$url" "$user"
    id=$(psql_db "$url" -c "INSERT INTO api_keys (user_id, name, key_hash, prefix)
                            VALUES ('$user', '$name', '\\x$hash'::bytea, '${key:0:8}')
                            RETURNING id")
    echo "$id $key"
}

publish_invalidation() { # MESSAGE ("key <uuid>", "user <id>")
    redis PUBLISH "${REDIS_PREFIX:-t$$:}invalidate" "$1" >/dev/null
}

revoke_key() { # DB_URL KEY_ID
    psql_db "$1" -c "UPDATE api_keys SET revoked_at = now(), revoked_by = 'test' WHERE id = '$2'"
    publish_invalidation "key $2"
}

set_disabled() { # DB_URL USER_ID true|false
    psql_db "$1" -c "UPDATE users SET disabled = $3 WHERE id = '$2'"
    publish_invalidation "user $2"
}

# chat_as AUTH_VALUE [curl args...]: POST a chat completion with Authorization: Bearer AUTH_VALUE
# (headers to $T/h, body on stdout)
chat_as() {
    local auth=$1; shift
    curl_tg "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $auth" \
        -H "Content-Type: application/json" "$@" -d "$CHAT"
}

code_of() { # curl args...: only the HTTP status
    curl -s -o /dev/null -w '%{http_code}' "$@"
}

# expect_401 NAME BODY: the last curl_tg answer is the one generic 401 (SPEC §2): OpenAI error
# shape, authentication_error, WWW-Authenticate: Bearer, and the same message whatever the cause.
expect_401() {
    local name=$1 body=$2
    assert_eq 401 "$(status)" "$name: status"
    assert_eq Bearer "$(header www-authenticate)" "$name: WWW-Authenticate"
    assert_eq authentication_error "$(echo "$body" | jq -r .error.type)" "$name: error type"
    assert_eq "$GENERIC_401" "$(echo "$body" | jq -r .error.message)" "$name: message"
    assert_eq invalid_api_key "$(echo "$body" | jq -r .error.code)" "$name: error code"
    assert_eq null "$(echo "$body" | jq -r .error.param)" "$name: error param"
    log "ok: $name -> 401"
}

expect_status() { # NAME WANT BODY: status and OpenAI error shape for an error status
    local name=$1 want=$2 body=$3
    assert_eq "$want" "$(status)" "$name: status"
    if [ "$want" -ge 400 ]; then
        [ -n "$(echo "$body" | jq -r '.error.message // empty')" ] ||
            fail "$name: no OpenAI error body: $body"
    fi
}

# last_user_of REQUEST_ID: who the request was billed to (its log line)
user_of() {
    log_for "$1" | jq -r .user
}

# start_jwks_server BODY_FILE [PORT]: sets JWKS_PID, JWKS_PORT, JWKS_URL; fetches logged in
# $T/jwks-fetches.log
start_jwks_server() {
    rm -f "$T/jwks.port"
    node "$JWKS_SERVER" "$T/jwks.port" "$1" "$T/jwks-fetches.log" "${2:-0}" \
        >>"$T/jwks-server.log" 2>&1 &
    JWKS_PID=$!
    TG_PIDS+=("$JWKS_PID")
    wait_until 10 "JWKS server port" test -s "$T/jwks.port"
    JWKS_PORT=$(cat "$T/jwks.port")
    JWKS_URL="http://127.0.0.1:$JWKS_PORT/.well-known/jwks.json"
}

jwks_fetches() { # how many times the JWKS server was asked
    if [ -f "$T/jwks-fetches.log" ]; then wc -l <"$T/jwks-fetches.log"; else echo 0; fi
}

sql_at_least() { # DB_URL N SQL: the count SQL returns is at least N (for wait_until)
    [ "$(psql_db "$1" -c "$3")" -ge "$2" ]
}

# start_tollgate (lib.sh) with REDIS_TIMEOUT_MS=2000: on a busy shared machine (or under the
# sanitizers) Redis may answer the quota reservation after the default 200 ms, and a 503 is not
# what the identity tests are about. The test's own VAR=VALUE arguments come after and win.
# It also waits for /readyz: /healthz (what start_tollgate waits for) answers before the workers'
# Redis connections are up, and a request in that window gets 503. /readyz answers for the worker
# that took the connection, so several fresh connections in a row must all be ready.
ident_tollgate() {
    local name=$1
    shift
    start_tollgate "$name" REDIS_TIMEOUT_MS=2000 "$@"
    wait_until 20 "tollgate $name ready" all_workers_ready
}
all_workers_ready() {
    local i
    for i in 1 2 3 4 5 6 7 8; do
        curl -fsS -o /dev/null "$TG_URL/readyz" 2>/dev/null || return 1
    done
}

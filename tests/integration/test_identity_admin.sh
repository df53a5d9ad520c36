#!/usr/bin/env bash
# Issue 4 §5: who reaches /admin/api/: a JWT with role admin or TOLLGATE_ADMIN_KEY (whatever
# the admin router then answers, it is not 401/403); a user's credential (JWT without the admin
# role, personal key, service key) gets 403; no or a bad credential gets 401. Disabled users get
# 403 on the gateway routes, whatever their credential.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_identity.sh"

SECRET="hs-secret-for-the-admin-test-0123456789"
start_fake
DB_URL=$(new_db ident_admin)
ident_tollgate adm JWT_SECRET="$SECRET" TOLLGATE_ADMIN_KEY="$ADMIN_KEY" \
    TOLLGATE_SERVICE_KEY="$SERVICE_KEY" TOLLGATE_API_KEYS=on

admin_get() { # AUTH_HEADER_VALUE_OR_EMPTY: GET /admin/api/users, body on stdout
    if [ -n "$1" ]; then
        curl_tg "$TG_URL/admin/api/users" -H "Authorization: $1"
    else
        curl_tg "$TG_URL/admin/api/users"
    fi
}
admitted() { # NAME AUTH
    local body
    body=$(admin_get "$2")
    case "$(status)" in
        401 | 403) fail "$1: refused with $(status): $body" ;;
    esac
    log "ok: $1 admitted ($(status) from the admin router)"
}
forbidden() { # NAME AUTH
    local body
    body=$(admin_get "$2")
    assert_eq 403 "$(status)" "$1: status ($body)"
    assert_eq permission_error "$(echo "$body" | jq -r .error.type)" "$1: error type"
    log "ok: $1 -> 403"
}
unauthorized() { # NAME AUTH
    local body
    body=$(admin_get "$2")
    assert_eq 401 "$(status)" "$1: status ($body)"
    assert_eq Bearer "$(header www-authenticate)" "$1: WWW-Authenticate"
    assert_eq authentication_error "$(echo "$body" | jq -r .error.type)" "$1: error type"
    log "ok: $1 -> 401"
}

admin_jwt=$(jwt HS256 "secret:$SECRET" '{"sub":"root","role":"admin","exp":"now+600"}')
admin_jwt_arr=$(jwt HS512 "secret:$SECRET" '{"sub":"root2","role":["user","admin"],"exp":"now+600"}')
user_jwt=$(jwt HS256 "secret:$SECRET" '{"sub":"plain","exp":"now+600"}')
other_role=$(jwt HS256 "secret:$SECRET" '{"sub":"plain","role":"Admin","exp":"now+600"}')
expired_admin=$(jwt HS256 "secret:$SECRET" '{"sub":"root","role":"admin","exp":"now-3600"}')
forged_admin=$(jwt HS256 "secret:not-the-secret" '{"sub":"root","role":"admin","exp":"now+600"}')
read -r _ key < <(new_api_key "$DB_URL" keyholder)

admitted "admin JWT" "Bearer $admin_jwt"
admitted "admin JWT (role array)" "Bearer $admin_jwt_arr"
admitted "TOLLGATE_ADMIN_KEY" "Bearer $ADMIN_KEY"
admitted "TOLLGATE_ADMIN_KEY, scheme in lower case" "bearer $ADMIN_KEY"
body=$(curl_tg "$TG_URL/admin/api/users" -H "x-api-key: $ADMIN_KEY")
case "$(status)" in 401 | 403) fail "admin key in x-api-key refused" ;; esac
forbidden "JWT without the admin role" "Bearer $user_jwt"
forbidden "JWT with role 'Admin' (case matters)" "Bearer $other_role"
forbidden "personal API key" "Bearer $key"
forbidden "service key" "Bearer $SERVICE_KEY"
unauthorized "no credential" ""
unauthorized "expired admin JWT" "Bearer $expired_admin"
unauthorized "admin JWT with a forged signature" "Bearer $forged_admin"
unauthorized "garbage" "Bearer not-a-credential"
unauthorized "admin key near miss" "Bearer ${ADMIN_KEY}x"
unauthorized "Basic scheme" "Basic $(printf 'admin:%s' "$ADMIN_KEY" | base64 -w0)"
# every admin path is guarded, not only the ones the router knows
body=$(curl_tg "$TG_URL/admin/api/no/such/route")
assert_eq 401 "$(status)" "unknown admin path without credential"
body=$(curl_tg -X DELETE "$TG_URL/admin/api/keys/00000000-0000-0000-0000-000000000000" -H "Authorization: Bearer $user_jwt")
assert_eq 403 "$(status)" "revoking a key with a user's JWT"
body=$(curl_tg -X POST "$TG_URL/admin/api/users/plain/keys" -H "Authorization: Bearer $key" \
    -H "Content-Type: application/json" -d '{"name":"x"}')
assert_eq 403 "$(status)" "creating a key with a personal key"
assert_eq 1 "$(psql_db "$DB_URL" -c "SELECT count(*) FROM api_keys")" "no key was created"

# the admin key is not a user: it does not reach the gateway routes
body=$(chat_as "$ADMIN_KEY")
assert_eq 403 "$(status)" "admin key on /v1/chat/completions"
# an admin's JWT on the gateway is an ordinary user, billed to its sub
body=$(chat_as "$admin_jwt")
assert_eq 200 "$(status)" "admin JWT on the gateway"
assert_eq root "$(user_of "$(header x-request-id)")" "admin JWT billed to its sub"

# ---- disabled users: 403 with every credential -----------------------------------------------
svc() { curl_tg "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $SERVICE_KEY" \
    -H "X-Tollgate-User: $1" -H "Content-Type: application/json" -d "$CHAT"; }
body=$(chat_as "$user_jwt")
assert_eq 200 "$(status)" "plain user before"
body=$(svc keyholder)
assert_eq 200 "$(status)" "keyholder via the service key before"
set_disabled "$DB_URL" plain true
set_disabled "$DB_URL" keyholder true
disabled_403() { # NAME BODY
    assert_eq 403 "$(status)" "$1: status"
    assert_eq permission_error "$(echo "$2" | jq -r .error.type)" "$1: error type"
    assert_eq user_disabled "$(echo "$2" | jq -r .error.code)" "$1: error code"
    assert_contains "$(echo "$2" | jq -r .error.message)" "disabled" "$1: message"
    log "ok: $1 -> 403"
}
jwt_403() { [ "$(code_of "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $user_jwt" \
    -H "Content-Type: application/json" -d "$CHAT")" = 403 ]; }
wait_until 5 "the disabled user refused" jwt_403
body=$(chat_as "$user_jwt"); disabled_403 "disabled user, JWT" "$body"
body=$(chat_as "$key"); disabled_403 "disabled user, personal key" "$body"
body=$(svc keyholder); disabled_403 "disabled user, service key" "$body"
body=$(curl_tg "$TG_URL/v1/quota" -H "Authorization: Bearer $user_jwt")
assert_eq 403 "$(status)" "disabled user, /v1/quota"
# a disabled user never reaches the upstream
curl -s -X DELETE "$FAKE_URL/_fake/requests" >/dev/null
body=$(chat_as "$key")
assert_eq 0 "$(curl -s "$FAKE_URL/_fake/requests" | jq '[.[] | select(.path == "/v1/chat/completions")] | length')" "a disabled user's request was forwarded"
set_disabled "$DB_URL" plain false
jwt_200() { [ "$(code_of "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $user_jwt" \
    -H "Content-Type: application/json" -d "$CHAT")" = 200 ]; }
wait_until 5 "the user enabled again" jwt_200
log "PASS"

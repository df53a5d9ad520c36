#!/usr/bin/env bash
# Issue 8 §6: who may use the admin API. For every route of the OpenAPI document: no credential
# and a bad one get 401 (WWW-Authenticate: Bearer); a user's JWT, a personal API key and the
# service key get 403; an admin JWT (role admin) and TOLLGATE_ADMIN_KEY get through. A method
# the path does not have gets 405 with Allow; an unknown path 404. The audit actor is the admin
# JWT's sub, or "admin-key".
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
start_fake
DB_URL=$(new_db admin_auth)
start_admin tg

DOC="$TG_SOURCE_DIR/proxy/src/admin/openapi.json"
USER_JWT=$(jwt '{"sub":"plain-user"}')
ADMIN_JWT=$(jwt '{"sub":"root-admin","role":"admin"}')
EXPIRED_ADMIN_JWT=$(jwt "{\"sub\":\"root-admin\",\"role\":\"admin\",\"exp\":$(($(date +%s) - 3600))}")
WRONG_SIG=$(echo "$ADMIN_JWT" | sed 's/.$/A/;s/\.[^.]*$/.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/')
PERSONAL_KEY=$(adm_ok POST /admin/api/users/key-owner/keys '{"name":"k"}' | jq -r .key)
assert_eq 200 "$(chat_key "$PERSONAL_KEY")" "the personal key works on the proxy"

# every (method, path) of the document, with sample path parameters
mapfile -t ROUTES < <(jq -r '.paths | to_entries[] | .key as $p | .value | keys[] |
    select(. != "parameters") | "\(ascii_upcase) \($p)"' "$DOC")
[ "${#ROUTES[@]}" -ge 18 ] || fail "only ${#ROUTES[@]} routes in $DOC"

call() { # METHOD PATH AUTH_HEADER...: prints the status; headers in $T/h
    local m=$1 p=$2; shift 2
    local mt=3
    [[ "$p" == */events ]] && mt=1 # an endless stream: its status is all we need
    local path=${p//\{id\}/auth-u}
    path=${path//\{key_id\}/01234567-89ab-7def-8123-456789abcdef}
    path=${path//\{model\}/auth-model}
    curl -s -D "$T/h" -o "$T/body" -w '%{http_code}' --max-time $mt -X "$m" "$TG_URL$path" "$@" \
        -H 'Content-Type: application/json' \
        $( [ "$m" = PUT ] && echo "--data-binary {\"limit_tokens\":100,\"input_usd_per_mtok\":1,\"output_usd_per_mtok\":2}" ) ||
        true
}

for r in "${ROUTES[@]}"; do
    m=${r%% *}; p=${r#* }
    s=$(call "$m" "$p")
    assert_eq 401 "$s" "$r without a credential"
    assert_eq Bearer "$(header www-authenticate)" "$r: WWW-Authenticate"
    jq -e '.error.type == "authentication_error"' "$T/body" >/dev/null || fail "$r: 401 body $(cat "$T/body")"
    assert_eq 401 "$(call "$m" "$p" -H "Authorization: Bearer not-a-credential")" "$r with garbage"
    assert_eq 401 "$(call "$m" "$p" -H "Authorization: Bearer $WRONG_SIG")" "$r with a forged JWT"
    assert_eq 401 "$(call "$m" "$p" -H "Authorization: Bearer $EXPIRED_ADMIN_JWT")" "$r with an expired admin JWT"
    assert_eq 403 "$(call "$m" "$p" -H "Authorization: Bearer $USER_JWT")" "$r with a user's JWT"
    jq -e '.error.type == "permission_error"' "$T/body" >/dev/null || fail "$r: 403 body $(cat "$T/body")"
    assert_eq 403 "$(call "$m" "$p" -H "Authorization: Bearer $SERVICE_KEY")" "$r with the service key"
    assert_eq 403 "$(call "$m" "$p" -H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: root-admin")" \
        "$r with the service key naming a user"
    assert_eq 403 "$(call "$m" "$p" -H "Authorization: Bearer $PERSONAL_KEY")" "$r with a personal API key"
    assert_eq 403 "$(call "$m" "$p" -H "x-api-key: $PERSONAL_KEY")" "$r with a personal API key in x-api-key"
    for cred in "$ADMIN_KEY" "$ADMIN_JWT"; do
        s=$(call "$m" "$p" -H "Authorization: Bearer $cred")
        [[ "$s" =~ ^(200|201|400|404)$ ]] || fail "$r with an admin credential: $s $(cat "$T/body")"
    done
    s=$(call "$m" "$p" -H "x-api-key: $ADMIN_KEY")
    [[ "$s" =~ ^(200|201|400|404)$ ]] || fail "$r with the admin key in x-api-key: $s"
done
log "ok: 401/403/admin on ${#ROUTES[@]} routes"

# ---- 405 with Allow, 404 ---------------------------------------------------------------------
for p in $(jq -r '.paths | keys[]' "$DOC"); do
    allow=$(jq -r --arg p "$p" '.paths[$p] | keys | map(select(. != "parameters") | ascii_upcase) | join(", ")' "$DOC")
    for m in GET PUT POST DELETE PATCH; do
        [[ ", $allow, " == *", $m, "* ]] && continue
        s=$(call "$m" "$p" -H "Authorization: Bearer $ADMIN_KEY")
        assert_eq 405 "$s" "$m $p"
        got=$(header allow)
        # same set of methods (the server lists them in table order)
        assert_eq "$(echo "$allow" | tr -d ' ' | tr ',' '\n' | sort | tr '\n' ' ')" \
            "$(echo "$got" | tr -d ' ' | tr ',' '\n' | sort | tr '\n' ' ')" "Allow of $p"
        jq -e '.error.code == "method_not_allowed" and .error.type == "invalid_request_error"' \
            "$T/body" >/dev/null || fail "$m $p: 405 body $(cat "$T/body")"
    done
done
log "ok: 405 with Allow on every path"
for p in /admin/api /admin/api/ /admin/api/nope /admin/api/users/a/b/c /admin/api/users/ /admin/api/ledger.json; do
    out=$(adm GET "$p")
    expect_error "GET $p" 404 null "$out"
done
out=$(curl_tg "$TG_URL/admin/api/nope")
assert_eq 401 "$(status)" "an unknown admin path without a credential is 401, not 404"

# ---- the audit actor ------------------------------------------------------------------------
curl_tg -X PUT "$TG_URL/admin/api/users/actor-test/quota" -H "Authorization: Bearer $ADMIN_JWT" \
    -d '{"limit_tokens":123}' >/dev/null
assert_eq 200 "$(status)" "quota set with an admin JWT"
adm PUT /admin/api/users/actor-test/quota '{"limit_tokens":456}' >/dev/null
actors=$(psql_db "$DB_URL" -c "SELECT string_agg(actor, ',' ORDER BY id) FROM audit_log
                               WHERE action = 'quota.set' AND target = 'user:actor-test'")
assert_eq "root-admin,admin-key" "$actors" "audit actors (JWT sub, then the admin key)"
log "ok: audit actors"

#!/usr/bin/env bash
# Issue 8 §4: every bad input gets 400 naming the field (error.param) in the OpenAI error shape,
# and changes nothing; an unknown user / key on a read or revoke route gets 404.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
start_fake
DB_URL=$(new_db admin_valid)
start_admin tg
adm_ok PUT /admin/api/users/u1/quota '{"limit_tokens":1000}' >/dev/null
audit_before=$(psql_db "$DB_URL" -c "SELECT count(*) FROM audit_log")
LONG=$(printf 'x%.0s' $(seq 1 129))

# METHOD | PATH | BODY | STATUS | PARAM ("null": none)
while IFS='|' read -r m p body want param; do
    [ -z "$m" ] && continue
    out=$(adm "$m" "$p" "$body")
    expect_error "$m $p $body" "$want" "$param" "$out"
done <<EOT
PUT|/admin/api/users/u1/quota|{"limit_tokens":5,"period":"year"}|400|period
PUT|/admin/api/users/u1/quota|{"limit_tokens":5,"period":5}|400|period
PUT|/admin/api/users/u1/quota|{"limit_tokens":5,"period":""}|400|period
PUT|/admin/api/users/u1/quota|{"limit_tokens":-2}|400|limit_tokens
PUT|/admin/api/users/u1/quota|{"limit_tokens":1.5}|400|limit_tokens
PUT|/admin/api/users/u1/quota|{"limit_tokens":10.0}|400|limit_tokens
PUT|/admin/api/users/u1/quota|{"limit_tokens":1e3}|400|limit_tokens
PUT|/admin/api/users/u1/quota|{"limit_tokens":"100"}|400|limit_tokens
PUT|/admin/api/users/u1/quota|{"limit_tokens":true}|400|limit_tokens
PUT|/admin/api/users/u1/quota|{"limit_tokens":9007199254740992}|400|limit_tokens
PUT|/admin/api/users/u1/quota|{"limit_tokens":99999999999999999999999}|400|limit_tokens
PUT|/admin/api/users/u1/quota|{"period":"month"}|400|limit_tokens
PUT|/admin/api/users/u1/quota|{"limit_tokens":5,"limit":6}|400|limit
PUT|/admin/api/users/u1/quota|{"limit_tokens":5,"limit_tokens":6}|400|limit_tokens
PUT|/admin/api/users/u1/quota|{"limit_tokens":5|400|body
PUT|/admin/api/users/u1/quota|[{"limit_tokens":5}]|400|body
PUT|/admin/api/users/u1/quota|"x"|400|body
PUT|/admin/api/users/u1/quota||400|body
PUT|/admin/api/users/u1/quota|{"limit_tokens":5} x|400|body
PUT|/admin/api/teams/t1/quota|{"limit_tokens":-5}|400|limit_tokens
PUT|/admin/api/teams/t1/quota|{"limit_tokens":5,"period":"fortnight"}|400|period
PUT|/admin/api/quota/default|{"limit_tokens":0.5}|400|limit_tokens
PUT|/admin/api/quota/default|{}|400|limit_tokens
PUT|/admin/api/users/$LONG/quota|{"limit_tokens":5}|400|id
PUT|/admin/api/users/a%00b/quota|{"limit_tokens":5}|400|id
PUT|/admin/api/users/a%0Ab/quota|{"limit_tokens":5}|400|id
PUT|/admin/api/users/a%C2%85b/quota|{"limit_tokens":5}|400|id
PUT|/admin/api/users/%ZZ/quota|{"limit_tokens":5}|400|id
PUT|/admin/api/users/%FF/quota|{"limit_tokens":5}|400|id
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":"-1","output_usd_per_mtok":"1"}|400|input_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":-0.5,"output_usd_per_mtok":"1"}|400|input_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":"10000.01","output_usd_per_mtok":"1"}|400|input_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":20000,"output_usd_per_mtok":"1"}|400|input_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":1e2,"output_usd_per_mtok":"1"}|400|input_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":"1e2","output_usd_per_mtok":"1"}|400|input_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":"NaN","output_usd_per_mtok":"1"}|400|input_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":"2,5","output_usd_per_mtok":"1"}|400|input_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":" 2","output_usd_per_mtok":"1"}|400|input_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":true,"output_usd_per_mtok":"1"}|400|input_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":"1","output_usd_per_mtok":"99999"}|400|output_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":"1"}|400|output_usd_per_mtok
PUT|/admin/api/prices/m1|{"output_usd_per_mtok":"1"}|400|input_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":"1","output_usd_per_mtok":"1","cached_input_usd_per_mtok":"-3"}|400|cached_input_usd_per_mtok
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":"1","output_usd_per_mtok":"1","effective_from":"yesterday"}|400|effective_from
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":"1","output_usd_per_mtok":"1","effective_from":"2025-02-30"}|400|effective_from
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":"1","output_usd_per_mtok":"1","effective_from":12}|400|effective_from
PUT|/admin/api/prices/m1|{"input_usd_per_mtok":"1","output_usd_per_mtok":"1","price":1}|400|price
POST|/admin/api/users/u1/keys|{"name":123}|400|name
POST|/admin/api/users/u1/keys|{"name":"a\nb"}|400|name
POST|/admin/api/users/u1/keys|{"nam":"x"}|400|nam
POST|/admin/api/users/u1/keys|not json|400|body
POST|/admin/api/users/u1/disable|{"reason":"x"}|400|reason
POST|/admin/api/users/u1/enable|[]|400|body
DELETE|/admin/api/keys/not-a-uuid||400|key_id
DELETE|/admin/api/keys/01234567-89ab-7def-8123-456789abcdeff||400|key_id
GET|/admin/api/users?limit=1001||400|limit
GET|/admin/api/users?limit=0||400|limit
GET|/admin/api/users?limit=ten||400|limit
GET|/admin/api/users?offset=-1||400|offset
GET|/admin/api/users?sort=bogus||400|sort
GET|/admin/api/users?order=up||400|order
GET|/admin/api/users?page=2||400|page
GET|/admin/api/users?q=a&q=b||400|q
GET|/admin/api/users?q=a%0Ab||400|q
GET|/admin/api/users/u1?from=2025-13-01||400|from
GET|/admin/api/users/u1?from=2025-11-02&to=2025-11-01||400|from
GET|/admin/api/usage?from=garbage||400|from
GET|/admin/api/usage?to=2025-11-01T25:00:00Z||400|to
GET|/admin/api/usage?from=2025-11-02&to=2025-11-01||400|from
GET|/admin/api/usage?group_by=week||400|group_by
GET|/admin/api/usage?limit=10001||400|limit
GET|/admin/api/usage?sort=cost||400|sort
GET|/admin/api/usage?order=sideways||400|order
GET|/admin/api/usage?from=0000-01-01||400|from
GET|/admin/api/ledger?limit=1001||400|limit
GET|/admin/api/ledger?cursor=xyz||400|cursor
GET|/admin/api/ledger?from=2025-11-01T00:00:00||400|from
GET|/admin/api/ledger?user=a%01||400|user
GET|/admin/api/ledger?from=2025-12-01&to=2025-11-01||400|from
GET|/admin/api/ledger.csv?from=x||400|from
GET|/admin/api/ledger.csv?to=2025-11-01&from=2025-12-01||400|from
GET|/admin/api/ledger.csv?format=json||400|format
GET|/admin/api/prices?model=a%0Ab||400|model
GET|/admin/api/audit?cursor=abc||400|cursor
GET|/admin/api/audit?limit=0||400|limit
GET|/admin/api/audit?limit=100000||400|limit
GET|/admin/api/events?since=1||400|since
GET|/admin/api/users/nobody||404|id
DELETE|/admin/api/keys/01234567-89ab-7def-8123-456789abcdef||404|key_id
EOT
log "ok: validation table"

# nothing was changed by the refused requests
assert_eq "$audit_before" "$(psql_db "$DB_URL" -c "SELECT count(*) FROM audit_log")" "no audit rows"
assert_eq "0|0" "$(psql_db "$DB_URL" -c "SELECT (SELECT count(*) FROM model_prices), (SELECT count(*) FROM api_keys)")" \
    "no prices or keys"
assert_eq "u1:1000" "$(psql_db "$DB_URL" -c "SELECT string_agg(subject_id || ':' || limit_tokens, ',') FROM quotas")" \
    "quotas unchanged"
assert_eq "u1" "$(psql_db "$DB_URL" -c "SELECT string_agg(id, ',') FROM users")" "no users created"
# limits at the edges are fine
adm_ok GET '/admin/api/users?limit=1000&offset=0' >/dev/null
adm_ok GET '/admin/api/usage?limit=10000&from=2025-11-01&to=2025-11-01' >/dev/null
adm_ok GET '/admin/api/ledger?limit=1000' >/dev/null
adm_ok PUT /admin/api/users/u1/quota '{"limit_tokens":9007199254740991,"period":null}' >/dev/null
adm_ok PUT /admin/api/prices/m1 '{"input_usd_per_mtok":"10000","output_usd_per_mtok":0,"cached_input_usd_per_mtok":null}' >/dev/null
log "ok: edge values accepted"

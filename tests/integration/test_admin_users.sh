#!/usr/bin/env bash
# Issue 8 §1, §5: users with this period's usage, limit and state (search, sort, paging, total);
# one user's detail; user, team and default quotas in effect at once; keys created (shown once,
# stored as a hash) and revoked; users disabled and enabled; every change audited in the same
# transaction (a failing audit insert undoes the change).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
start_fake
DB_URL=$(new_db admin_users)
load_uuid7 "$DB_URL"
start_admin tg QUOTA_DEFAULT_TOKENS=1000000 QUOTA_PERIOD=month QUOTA_WARN_PERCENT=80 QUOTA_TIMEZONE=UTC

MONTH_MS=$(($(date -u -d "$(date -u +%Y-%m-01)" +%s) * 1000))
NOW=$(now_ms)
T0=$((NOW - 5000 > MONTH_MS ? NOW - 5000 : MONTH_MS)) # this month, in the past
LAST_MONTH=$((MONTH_MS - 86400000))

# ---- users and their usage ------------------------------------------------------------------
adm_ok PUT /admin/api/users/ann/quota '{"limit_tokens":1000}' >/dev/null
adm_ok PUT /admin/api/users/bert/quota '{"limit_tokens":100,"period":"month"}' >/dev/null
adm_ok PUT /admin/api/users/dan/quota '{"limit_tokens":-1}' >/dev/null
assert_eq 200 "$(chat_user cleo -H 'X-Tollgate-User-Email: cleo@Example.COM')" "cleo's first request"
wait_until 10 "cleo's ledger row" sql_is "$DB_URL" "SELECT count(*) FROM ledger WHERE user_id = 'cleo'" 1
CLEO_CHAT=$(psql_db "$DB_URL" -c "SELECT total_tokens FROM ledger WHERE user_id = 'cleo'")
seed_rows "$DB_URL" ann "" m-a 2 "$T0" 1 400 25 1            # 850 tokens
seed_rows "$DB_URL" bert "" m-b 3 "$T0" 1 40 10 2            # 150
seed_rows "$DB_URL" cleo "" m-c 1 "$T0" 1 10 0 3             # 10
seed_rows "$DB_URL" cleo "" m-c 5 "$LAST_MONTH" 1 1000 0 4   # last month: not this period
seed_rows "$DB_URL" dan "" m-d 1 "$T0" 1 15 10 5             # 25
CLEO_USED=$((10 + CLEO_CHAT))

users=$(adm_ok GET '/admin/api/users?sort=used_tokens')
assert_eq 4 "$(echo "$users" | jq .total)" "total"
assert_eq "ann bert dan cleo" "$(echo "$users" | jq -r '[.data[].id] | join(" ")')" "sorted by usage"
row() { echo "$users" | jq -c --arg id "$1" '.data[] | select(.id == $id) |
    [.limit_tokens, .used_tokens, .remaining_tokens, .percent, .state, .quota_source, .period]'; }
assert_eq '[1000,850,150,85,"warning","user","month"]' "$(row ann)" "ann"
assert_eq '[100,150,0,150,"exhausted","user","month"]' "$(row bert)" "bert"
assert_eq "[1000000,$CLEO_USED,$((1000000 - CLEO_USED)),0,\"ok\",\"default\",\"month\"]" "$(row cleo)" "cleo (last month not counted)"
assert_eq '[-1,25,-1,0,"ok","user","month"]' "$(row dan)" "dan (unlimited)"
assert_eq "$(date -u +%Y-%m-01)T00:00:00Z" "$(echo "$users" | jq -r '.data[0].period_start')" "period_start"
echo "$users" | jq -e '.data[] | select(.id == "cleo") | .email == "cleo@Example.COM" and .last_seen != null' >/dev/null ||
    fail "cleo's email and last_seen: $users"
assert_eq "bert ann cleo dan" "$(adm_ok GET '/admin/api/users?sort=percent' | jq -r '[.data[].id] | join(" ")')" "by percent"
assert_eq "cleo dan bert ann" "$(adm_ok GET '/admin/api/users?sort=used_tokens&order=asc' | jq -r '[.data[].id] | join(" ")')" "by usage, ascending"
assert_eq "dan cleo bert ann" "$(adm_ok GET '/admin/api/users?sort=id&order=desc' | jq -r '[.data[].id] | join(" ")')" "by id, descending"
p=$(adm_ok GET '/admin/api/users?limit=2&offset=1')
assert_eq "bert cleo|4|2|1" "$(echo "$p" | jq -r '"\([.data[].id] | join(" "))|\(.total)|\(.limit)|\(.offset)"')" "a page"
p=$(adm_ok GET '/admin/api/users?q=EXAMPLE.com')
assert_eq "cleo|1" "$(echo "$p" | jq -r '"\([.data[].id] | join(" "))|\(.total)"')" "search by e-mail, any case"
p=$(adm_ok GET '/admin/api/users?q=an&limit=1')
assert_eq "ann|2" "$(echo "$p" | jq -r '"\([.data[].id] | join(" "))|\(.total)"')" "search by id with a limit"
assert_eq 0 "$(adm_ok GET '/admin/api/users?offset=100' | jq '.data | length')" "past the end"
log "ok: user list"

# ---- one user ---------------------------------------------------------------------------------
psql_db "$DB_URL" -c "INSERT INTO users (id, team_id) VALUES ('eve', 't-red')" >/dev/null
seed_rows "$DB_URL" eve t-red m-e 2 $((T0 - 86400000)) 86400000 30 10 6 # 80, a day apart
seed_rows "$DB_URL" zoe t-red m-e 1 "$T0" 1 100 0 7          # the team's other member
adm_ok PUT /admin/api/teams/t-red/quota '{"limit_tokens":5000}' >/dev/null
FROM=$(date -u -d @$((T0 / 1000 - 86401)) +%Y-%m-%dT%H:%M:%SZ)
TO=$(date -u -d @$((T0 / 1000 + 1)) +%Y-%m-%dT%H:%M:%SZ)
d=$(adm_ok GET "/admin/api/users/eve?from=$FROM&to=$TO")
assert_eq '"t-red"' "$(echo "$d" | jq -c .user.team_id)" "eve's team"
assert_eq '["default",1000000]' "$(echo "$d" | jq -c '[.quota.source, .quota.limit_tokens]')" "eve's quota"
team_used=$(psql_db "$DB_URL" -c "SELECT sum(total_tokens) FROM ledger WHERE team_id = 't-red'
    AND started_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")
assert_eq "[\"t-red\",5000,$team_used]" "$(echo "$d" | jq -c '[.team_quota.team_id, .team_quota.limit_tokens, .team_quota.used_tokens]')" "team quota"
assert_eq '[{"model":"m-e","requests":2,"total_tokens":80,"cached_tokens":14,"reasoning_tokens":4}]' \
    "$(echo "$d" | jq -c '[.usage_by_model[] | {model, requests, total_tokens, cached_tokens, reasoning_tokens}]')" "eve by model"
assert_eq 2 "$(echo "$d" | jq '.usage_by_day | length')" "eve by day: two days"
assert_eq 80 "$(echo "$d" | jq '[.usage_by_day[].total_tokens] | add')" "eve by day: sum"
assert_eq "${FROM%Z}.000Z ${TO%Z}.000Z" "$(echo "$d" | jq -r '"\(.range.from) \(.range.to)"')" "the range asked for"
d=$(adm_ok GET /admin/api/users/ann)
assert_eq '["user",1000,850,"warning",null]' "$(echo "$d" | jq -c '[.quota.source, .quota.limit_tokens, .quota.used_tokens, .quota.state, .team_quota]')" "ann"
assert_eq "$(date -u +%Y-%m-01)T00:00:00.000Z $(date -u -d "$(date -u +%Y-%m-01) +1 month" +%Y-%m-%d)T00:00:00.000Z" \
    "$(echo "$d" | jq -r '"\(.range.from) \(.range.to)"')" "default range: the quota period"
out=$(adm GET /admin/api/users/nobody-at-all)
expect_error "unknown user" 404 id "$out"
log "ok: user detail"

# ---- keys -------------------------------------------------------------------------------------
k=$(curl_tg -X POST "$TG_URL/admin/api/users/ann/keys" -H "Authorization: Bearer $ADMIN_KEY" -d '{"name":"laptop"}')
assert_eq 201 "$(status)" "key created"
KEY=$(echo "$k" | jq -r .key); KEY_ID=$(echo "$k" | jq -r .id)
[[ "$KEY" =~ ^tg-[A-Za-z0-9_-]{43}$ ]] || fail "key shape: $KEY"
assert_eq "[\"laptop\",\"${KEY:0:8}\",\"ann\"]" "$(echo "$k" | jq -c '[.name, .prefix, .user_id]')" "key reply"
assert_eq no-store "$(header cache-control)" "the key reply is not cached"
assert_eq "$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)" \
    "$(psql_db "$DB_URL" -c "SELECT encode(key_hash, 'hex') FROM api_keys WHERE id = '$KEY_ID'")" "only the hash is stored"
[ "$(psql_db "$DB_URL" -c "SELECT count(*) FROM audit_log WHERE after::text LIKE '%$KEY%' OR after::text LIKE '%key_hash%'")" = 0 ] ||
    fail "the key or its hash is in the audit log"
assert_eq 200 "$(chat_key "$KEY")" "the new key works"
d=$(adm_ok GET /admin/api/users/ann)
assert_eq "[\"$KEY_ID\",\"laptop\",\"${KEY:0:8}\",null]" "$(echo "$d" | jq -c '.keys[0] | [.id, .name, .prefix, .revoked_at]')" "key listed"
[[ "$d" != *"$KEY"* && "$d" != *key_hash* ]] || fail "the detail shows the secret"
r=$(adm_ok DELETE "/admin/api/keys/$KEY_ID")
echo "$r" | jq -e '.revoked_at != null and .revoked_by == "admin-key" and .id == "'"$KEY_ID"'"' >/dev/null || fail "revoked: $r"
assert_eq 401 "$(chat_key "$KEY")" "a revoked key"
r2=$(adm_ok DELETE "/admin/api/keys/${KEY_ID^^}")
assert_eq "$(echo "$r" | jq -r .revoked_at)" "$(echo "$r2" | jq -r .revoked_at)" "revoking twice changes nothing"
assert_eq 1 "$(psql_db "$DB_URL" -c "SELECT count(*) FROM audit_log WHERE action = 'key.revoke'")" "one revoke audited"
k=$(adm_ok POST /admin/api/users/zed-new/keys '')
assert_eq '["","zed-new"]' "$(echo "$k" | jq -c '[.name, .user_id]')" "a key for a new user, no name"
assert_eq 200 "$(chat_key "$(echo "$k" | jq -r .key)")" "the new user's key works"
assert_eq "user.create key.create" "$(psql_db "$DB_URL" -c "SELECT string_agg(action, ' ' ORDER BY id) FROM audit_log WHERE target IN ('user:zed-new', 'key:$(echo "$k" | jq -r .id)')")" \
    "the user row was created and audited"
log "ok: keys"

# ---- disable / enable -------------------------------------------------------------------------
KEY2=$(adm_ok POST /admin/api/users/ann/keys '{"name":"phone"}' | jq -r .key)
assert_eq 200 "$(chat_key "$KEY2")" "ann's key before"
u=$(adm_ok POST /admin/api/users/ann/disable)
assert_eq '["ann",true]' "$(echo "$u" | jq -c '[.id, .disabled]')" "disabled"
assert_eq 403 "$(chat_key "$KEY2")" "a disabled user's key"
assert_eq 403 "$(chat_user ann)" "a disabled user via the service key"
adm_ok POST /admin/api/users/ann/disable '{}' >/dev/null
u=$(adm_ok POST /admin/api/users/ann/enable)
assert_eq false "$(echo "$u" | jq .disabled)" "enabled"
assert_eq 200 "$(chat_key "$KEY2")" "enabled again"
assert_eq "user.disable user.enable" "$(psql_db "$DB_URL" -c "SELECT string_agg(action, ' ' ORDER BY id) FROM audit_log WHERE target = 'user:ann' AND action IN ('user.disable', 'user.enable')")" \
    "audited once per change"
log "ok: disable and enable"

# ---- quotas in effect -------------------------------------------------------------------------
assert_eq 200 "$(chat_user gus)" "gus before"
q=$(adm_ok PUT /admin/api/users/gus/quota '{"limit_tokens":0}')
assert_eq '["user","gus",0,null,0,"month"]' "$(echo "$q" | jq -c '[.subject, .id, .limit_tokens, .period, .effective_limit_tokens, .effective_period]')" "quota reply"
assert_eq 402 "$(chat_user gus)" "blocked at once"
q=$(adm_ok PUT /admin/api/users/gus/quota '{"limit_tokens":null}')
assert_eq '[null,1000000]' "$(echo "$q" | jq -c '[.limit_tokens, .effective_limit_tokens]')" "back to the default"
assert_eq 0 "$(psql_db "$DB_URL" -c "SELECT count(*) FROM quotas WHERE subject_id = 'gus'")" "row removed"
assert_eq 200 "$(chat_user gus)" "gus after"
assert_eq 200 "$(chat_user eve)" "eve before the team limit"
adm_ok PUT /admin/api/teams/t-red/quota '{"limit_tokens":0}' >/dev/null
assert_eq 402 "$(chat_user eve)" "eve's team is blocked"
q=$(adm_ok PUT /admin/api/teams/t-red/quota '{"limit_tokens":null,"period":null}')
assert_eq '["team",null,null]' "$(echo "$q" | jq -c '[.subject, .limit_tokens, .effective_limit_tokens]')" "team quota removed"
assert_eq 200 "$(chat_user eve)" "eve after"
q=$(adm_ok GET /admin/api/quota/default)
assert_eq '["default",null,null,1000000,"month"]' "$(echo "$q" | jq -c '[.subject, .id, .limit_tokens, .effective_limit_tokens, .effective_period]')" "default from the environment"
adm_ok PUT /admin/api/quota/default '{"limit_tokens":0,"period":"day"}' >/dev/null
assert_eq 402 "$(chat_user newbie)" "a new user under a blocking default"
assert_eq 402 "$(chat_user gus)" "a cached user under the new default"
assert_eq 200 "$(chat_user dan)" "a user with an own limit"
assert_eq "0 day" "$(curl -s "$TG_URL/v1/quota" -H "Authorization: Bearer $SERVICE_KEY" -H 'X-Tollgate-User: newbie' | jq -r '"\(.limit_tokens) \(.period)"')" \
    "GET /v1/quota shows the default row"
q=$(adm_ok PUT /admin/api/quota/default '{"limit_tokens":null}')
assert_eq '[null,1000000,"month"]' "$(echo "$q" | jq -c '[.limit_tokens, .effective_limit_tokens, .effective_period]')" "default back to QUOTA_DEFAULT_TOKENS"
assert_eq 200 "$(chat_user newbie)" "newbie after"
assert_eq "quota.set" "$(psql_db "$DB_URL" -c "SELECT string_agg(DISTINCT action, ',') FROM audit_log WHERE target = 'default'")" "default audited"
log "ok: quotas in effect"

# ---- audit in the same transaction -------------------------------------------------------------
# Subjects that exist before the audit insert is made to fail: a key to revoke, a disabled user
# to enable, a team with a quota.
k=$(adm_ok POST /admin/api/users/ivy/keys '{"name":"poisoned revoke"}')
KEY3=$(echo "$k" | jq -r .key); KEY3_ID=$(echo "$k" | jq -r .id)
adm_ok POST /admin/api/users/hal/disable >/dev/null
adm_ok PUT /admin/api/teams/t-red/quota '{"limit_tokens":5000}' >/dev/null
assert_eq 200 "$(chat_key "$KEY3")" "ivy's key before"
assert_eq 403 "$(chat_user hal)" "hal disabled before"
# The audit insert fails for any target containing "poison", and for the (action, target)
# pairs in poison_rule.
AUDIT0=$(psql_db "$DB_URL" -c "SELECT max(id) FROM audit_log")
psql_db "$DB_URL" >/dev/null <<SQL
CREATE TABLE poison_rule (action text, target text);
INSERT INTO poison_rule VALUES ('key.revoke', 'key:$KEY3_ID'), ('user.enable', 'user:hal'),
    ('quota.set', 'team:t-red'), ('quota.set', 'default');
SQL
psql_db "$DB_URL" >/dev/null <<'SQL'
CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.target LIKE '%poison%' OR EXISTS (SELECT 1 FROM poison_rule r
      WHERE r.action = NEW.action AND r.target = NEW.target) THEN
    RAISE EXCEPTION 'audit refused';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER poison BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION poison();
SQL
adm PUT /admin/api/users/poison/quota '{"limit_tokens":5}' >/dev/null
assert_eq 500 "$(status)" "quota change with a failing audit"
adm POST /admin/api/users/poison/keys '{"name":"x"}' >/dev/null
assert_eq 500 "$(status)" "key with a failing audit"
adm PUT /admin/api/prices/poison-model '{"input_usd_per_mtok":1,"output_usd_per_mtok":1}' >/dev/null
assert_eq 500 "$(status)" "price with a failing audit"
adm POST /admin/api/users/poison/disable >/dev/null
assert_eq 500 "$(status)" "disable with a failing audit"
assert_eq "0|0|0|0" "$(psql_db "$DB_URL" -c "SELECT (SELECT count(*) FROM users WHERE id = 'poison'),
    (SELECT count(*) FROM quotas WHERE subject_id = 'poison'), (SELECT count(*) FROM api_keys WHERE user_id = 'poison'),
    (SELECT count(*) FROM model_prices WHERE model = 'poison-model')")" "nothing was changed without its audit row"
out=$(adm DELETE "/admin/api/keys/$KEY3_ID")
expect_error "key revoke with a failing audit" 500 null "$out"
out=$(adm POST /admin/api/users/hal/enable)
expect_error "enable with a failing audit" 500 null "$out"
out=$(adm PUT /admin/api/teams/t-red/quota '{"limit_tokens":0}')
expect_error "team quota with a failing audit" 500 null "$out"
out=$(adm PUT /admin/api/quota/default '{"limit_tokens":0,"period":"day"}')
expect_error "default quota with a failing audit" 500 null "$out"
assert_eq "t|t|5000|0|0" "$(psql_db "$DB_URL" -c "SELECT
    (SELECT revoked_at IS NULL AND revoked_by IS NULL FROM api_keys WHERE id = '$KEY3_ID'),
    (SELECT disabled FROM users WHERE id = 'hal'),
    (SELECT limit_tokens FROM quotas WHERE subject_kind = 'team' AND subject_id = 't-red'),
    (SELECT count(*) FROM quotas WHERE subject_kind = 'default'),
    (SELECT count(*) FROM audit_log a JOIN poison_rule r USING (action, target) WHERE a.id > $AUDIT0)")" \
    "revoke, enable, team and default quota: nothing changed without its audit row"
assert_eq 200 "$(chat_key "$KEY3")" "the key whose revocation failed still works"
assert_eq 403 "$(chat_user hal)" "the user whose enabling failed is still disabled"
assert_eq 200 "$(chat_user newbie2)" "a new user is not under the default that failed"
assert_eq 200 "$(chat_user eve)" "a member of the team whose blocking quota failed is served"
assert_eq 5000 "$(adm_ok GET /admin/api/teams/t-red | jq .limit_tokens)" "the team quota the API reports"
q=$(adm_ok GET /admin/api/quota/default)
assert_eq '[null,1000000,"month"]' "$(echo "$q" | jq -c '[.limit_tokens, .effective_limit_tokens, .effective_period]')" "the default the API reports"
log "ok: audit in the same transaction"

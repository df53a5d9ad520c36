#!/usr/bin/env bash
# GET /admin/api/teams and /admin/api/teams/{id}: every known team (registered, named by a
# user's team_id, or given a quota) with its member count, the team quota in effect (null when
# none), this period's usage from the ledger (the team's own period: month, week, ...), percent
# and state; search, sort, paging and total; one team's members and usage by model; 404 for an
# unknown team, 400 naming the bad input, 401, 403 for a user's credential, 503 without
# PostgreSQL.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
start_fake
DB_URL=$(new_db admin_teams)
load_uuid7 "$DB_URL"
start_admin tg QUOTA_DEFAULT_TOKENS=1000000 QUOTA_PERIOD=month QUOTA_WARN_PERCENT=80 QUOTA_TIMEZONE=UTC
sql() { psql_db "$DB_URL" -c "$1"; }

MONTH_MS=$(($(date -u -d "$(date -u +%Y-%m-01)" +%s) * 1000))
NOW=$(now_ms)
T0=$((NOW - 5000 > MONTH_MS ? NOW - 5000 : MONTH_MS)) # this month (and week), in the past
LAST_MONTH=$((MONTH_MS - 86400000))
EIGHT_DAYS_AGO=$((NOW - 8 * 86400000)) # before this week; maybe this month

# ---- teams and members through metered requests (a JWT's team claim) ----------------------------
ANA_JWT=$(jwt '{"sub":"ana","team":"t-alpha","email":"ana@example.com","name":"Ana"}')
BEN_JWT=$(jwt '{"sub":"ben","team":"t-alpha"}')
CORA_JWT=$(jwt '{"sub":"cora","team":"t-beta"}')
for j in "$ANA_JWT" "$BEN_JWT" "$CORA_JWT"; do assert_eq 200 "$(chat_key "$j")" "a member's request"; done
wait_until 10 "the chats' ledger rows" sql_is "$DB_URL" \
    "SELECT count(*) FROM ledger WHERE team_id IS NOT NULL AND model = 'gpt-4o-mini'" 3
chat_of() { sql "SELECT total_tokens FROM ledger WHERE user_id = '$1' AND model = 'gpt-4o-mini'"; }
ANA_CHAT=$(chat_of ana); BEN_CHAT=$(chat_of ben); CORA_CHAT=$(chat_of cora)
[ "$ANA_CHAT" -gt 0 ] && [ "$CORA_CHAT" -gt 0 ] || fail "the chats were not metered"
assert_eq "ana:t-alpha ben:t-alpha cora:t-beta" \
    "$(sql "SELECT string_agg(id || ':' || team_id, ' ' ORDER BY id) FROM users")" "members recorded"
seed_rows "$DB_URL" ana t-alpha m-x 2 "$T0" 1 400 100 1           # 1000 tokens
seed_rows "$DB_URL" ben t-alpha m-y 1 "$T0" 1 250 50 2            # 300
seed_rows "$DB_URL" ana t-alpha m-x 4 "$LAST_MONTH" 1 1000 0 3    # last month: not this period
seed_rows "$DB_URL" cora t-beta m-x 1 "$T0" 1 40 10 4             # 50
seed_rows "$DB_URL" cora t-beta m-z 3 "$EIGHT_DAYS_AGO" 1 100 0 5 # before this week
sql "UPDATE teams SET name = 'Beta Squad' WHERE id = 't-beta'" >/dev/null
# a team only named by a user's team_id (never registered in teams) and its usage
sql "INSERT INTO users (id, email, team_id) VALUES ('dora', 'dora@example.com', 't-gamma')" >/dev/null
seed_rows "$DB_URL" dora t-gamma m-x 1 "$T0" 1 400 100 6          # 500
A_USED=$((ANA_CHAT + BEN_CHAT + 1300))
B_USED=$((CORA_CHAT + 50))

# team quotas: exhausted, warning (about 90 % of a weekly limit), blocked and empty
adm_ok PUT /admin/api/teams/t-alpha/quota '{"limit_tokens":1000}' >/dev/null
B_LIMIT=$((B_USED * 10 / 9))
adm_ok PUT /admin/api/teams/t-beta/quota "{\"limit_tokens\":$B_LIMIT,\"period\":\"week\"}" >/dev/null
adm_ok PUT /admin/api/teams/t-empty/quota '{"limit_tokens":0}' >/dev/null
B_PCT=$((B_USED * 100 / B_LIMIT))
[ "$B_PCT" -ge 80 ] && [ "$B_USED" -lt "$B_LIMIT" ] || fail "t-beta setup: $B_USED of $B_LIMIT"
# the figures the list must show are the ledger's, over each team's period
assert_eq "$A_USED" "$(sql "SELECT sum(total_tokens) FROM ledger WHERE team_id = 't-alpha'
    AND started_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")" "t-alpha's ledger sum"

# ---- the list -------------------------------------------------------------------------------------
teams=$(adm_ok GET /admin/api/teams)
assert_eq no-store "$(header cache-control)" "not cached"
assert_eq "4|50|0" "$(echo "$teams" | jq -r '"\(.total)|\(.limit)|\(.offset)"')" "total, limit, offset"
assert_eq "t-alpha t-beta t-empty t-gamma" "$(echo "$teams" | jq -r '[.data[].id] | join(" ")')" "by id"
row() { echo "$teams" | jq -c --arg id "$1" '.data[] | select(.id == $id) | [.name, .member_count,
    .quota_source, .limit_tokens, .period, .used_tokens, .remaining_tokens, .percent, .state]'; }
assert_eq "[null,2,\"team\",1000,\"month\",$A_USED,0,$((A_USED / 10)),\"exhausted\"]" "$(row t-alpha)" "t-alpha"
assert_eq "[\"Beta Squad\",1,\"team\",$B_LIMIT,\"week\",$B_USED,$((B_LIMIT - B_USED)),$B_PCT,\"warning\"]" \
    "$(row t-beta)" "t-beta (a weekly quota: the row of 8 days ago is not counted)"
assert_eq '[null,0,"team",0,"month",0,0,100,"exhausted"]' "$(row t-empty)" "t-empty (blocked, no members)"
assert_eq '[null,1,null,null,"month",500,null,0,"ok"]' "$(row t-gamma)" "t-gamma (no team quota)"
assert_eq "$(date -u +%Y-%m-01)T00:00:00Z $(date -u -d "$(date -u +%Y-%m-01) +1 month" +%Y-%m-%d)T00:00:00Z" \
    "$(echo "$teams" | jq -r '.data[] | select(.id == "t-alpha") | "\(.period_start) \(.reset)"')" "t-alpha's period"
WEEK_START=$(echo "$teams" | jq -r '.data[] | select(.id == "t-beta") | .period_start')
[ "$(date -u -d "$WEEK_START" +%s)" -le $((NOW / 1000)) ] &&
    [ "$(date -u -d "$WEEK_START" +%s)" -gt $((NOW / 1000 - 7 * 86400)) ] || fail "t-beta's week starts at $WEEK_START"
ids() { adm_ok GET "/admin/api/teams?$1" | jq -r '[.data[].id] | join(" ")'; }
assert_eq "t-alpha t-gamma t-beta t-empty" "$(ids sort=used_tokens)" "by usage"
assert_eq "t-empty t-beta t-gamma t-alpha" "$(ids 'sort=used_tokens&order=asc')" "by usage, ascending"
assert_eq "t-alpha t-empty t-beta t-gamma" "$(ids sort=percent)" "by percent (no quota = 0)"
assert_eq "t-alpha t-beta t-gamma t-empty" "$(ids sort=member_count)" "by member count (ties by id)"
assert_eq "t-beta t-alpha t-empty t-gamma" "$(ids sort=name)" "by name (no name last)"
assert_eq "t-gamma t-empty t-beta t-alpha" "$(ids 'sort=id&order=desc')" "by id, descending"
p=$(adm_ok GET '/admin/api/teams?limit=2&offset=1')
assert_eq "t-beta t-empty|4|2|1" "$(echo "$p" | jq -r '"\([.data[].id] | join(" "))|\(.total)|\(.limit)|\(.offset)"')" "a page"
p=$(adm_ok GET '/admin/api/teams?q=SQUAD')
assert_eq "t-beta|1" "$(echo "$p" | jq -r '"\([.data[].id] | join(" "))|\(.total)"')" "search by name, any case"
p=$(adm_ok GET '/admin/api/teams?q=a&limit=1&sort=id')
assert_eq "t-alpha|3" "$(echo "$p" | jq -r '"\([.data[].id] | join(" "))|\(.total)"')" "search by id with a limit"
p=$(adm_ok GET '/admin/api/teams?q=nothing-like-it')
assert_eq "0|0" "$(echo "$p" | jq -r '"\(.data | length)|\(.total)"')" "no match"
assert_eq 0 "$(adm_ok GET '/admin/api/teams?offset=100' | jq '.data | length')" "past the end"
log "ok: team list"

# ---- one team --------------------------------------------------------------------------------------
d=$(adm_ok GET /admin/api/teams/t-alpha)
assert_eq "$(echo "$teams" | jq -c '.data[] | select(.id == "t-alpha")')" \
    "$(echo "$d" | jq -c 'del(.members, .range, .usage_by_model)')" "the detail has the list's fields"
users=$(adm_ok GET '/admin/api/users?limit=1000')
member() { echo "$users" | jq -c --arg id "$1" '.data[] | select(.id == $id)'; }
assert_eq "[$(member ana),$(member ben)]" "$(echo "$d" | jq -c .members)" "members, as in the user list"
assert_eq "[\"ana\",\"ana@example.com\",\"Ana\",$((ANA_CHAT + 1000))]" \
    "$(echo "$d" | jq -c '.members[0] | [.id, .email, .name, .used_tokens]')" "ana's usage this period"
assert_eq "[\"ben\",$((BEN_CHAT + 300))]" "$(echo "$d" | jq -c '.members[1] | [.id, .used_tokens]')" "ben's usage this period"
assert_eq "[{\"model\":\"m-x\",\"requests\":2,\"total_tokens\":1000},{\"model\":\"m-y\",\"requests\":1,\"total_tokens\":300},{\"model\":\"gpt-4o-mini\",\"requests\":2,\"total_tokens\":$((ANA_CHAT + BEN_CHAT))}]" \
    "$(echo "$d" | jq -c '[.usage_by_model[] | {model, requests, total_tokens}]')" "t-alpha by model (last month left out)"
assert_eq "$A_USED" "$(echo "$d" | jq '[.usage_by_model[].total_tokens] | add')" "by model adds up to used_tokens"
assert_eq "$(date -u +%Y-%m-01)T00:00:00.000Z $(date -u -d "$(date -u +%Y-%m-01) +1 month" +%Y-%m-%d)T00:00:00.000Z" \
    "$(echo "$d" | jq -r '"\(.range.from) \(.range.to)"')" "range: the team's month"
d=$(adm_ok GET /admin/api/teams/t-beta)
assert_eq "${WEEK_START%Z}.000Z" "$(echo "$d" | jq -r .range.from)" "range: the team's week"
assert_eq "[\"cora\"]|[\"m-x\",\"gpt-4o-mini\"]|$B_USED" \
    "$(echo "$d" | jq -r '"\([.members[].id] | tojson)|\([.usage_by_model[].model] | tojson)|\(.used_tokens)"')" \
    "t-beta: members, models this week (m-z is older)"
d=$(adm_ok GET /admin/api/teams/t-empty)
assert_eq '[0,[],[]]' "$(echo "$d" | jq -c '[.member_count, .members, .usage_by_model]')" "t-empty"
d=$(adm_ok GET /admin/api/teams/t-gamma)
assert_eq '[null,null,["dora"],[{"model":"m-x","total_tokens":500}]]' \
    "$(echo "$d" | jq -c '[.limit_tokens, .quota_source, [.members[].id], [.usage_by_model[] | {model, total_tokens}]]')" "t-gamma"
out=$(adm GET /admin/api/teams/no-such-team)
expect_error "unknown team" 404 id "$out"
assert_eq team_not_found "$(echo "$out" | jq -r .error.code)" "404 code"
log "ok: team detail"

# ---- bad input, credentials, method ----------------------------------------------------------------
for c in 'limit=0 limit' 'limit=1001 limit' 'limit=x limit' 'offset=-1 offset' 'sort=email sort' \
         'sort=bogus sort' 'order=up order' 'from=2025-01-01 from'; do
    set -- $c
    out=$(adm GET "/admin/api/teams?$1")
    expect_error "GET /admin/api/teams?$1" 400 "$2" "$out"
done
out=$(adm GET '/admin/api/teams?q=a%0Ab')
expect_error "q with a control character" 400 q "$out"
out=$(adm GET '/admin/api/teams/t-alpha?limit=1')
expect_error "the detail takes no query" 400 limit "$out"
out=$(adm GET '/admin/api/teams/a%00b')
expect_error "a bad team id" 400 id "$out"
out=$(curl_tg "$TG_URL/admin/api/teams")
expect_error "no credential" 401 null "$out"
assert_eq Bearer "$(header www-authenticate)" "401 asks for a bearer token"
out=$(curl_tg "$TG_URL/admin/api/teams/t-alpha")
expect_error "no credential, detail" 401 null "$out"
for cred in "$CORA_JWT" "$SERVICE_KEY"; do
    out=$(curl_tg "$TG_URL/admin/api/teams" -H "Authorization: Bearer $cred")
    expect_error "a non-admin credential" 403 null "$out"
    out=$(curl_tg "$TG_URL/admin/api/teams/t-beta" -H "Authorization: Bearer $cred")
    expect_error "a non-admin credential, detail" 403 null "$out"
done
out=$(adm POST /admin/api/teams '{}')
expect_error "POST on the list" 405 null "$out"
assert_eq GET "$(header allow)" "Allow"
out=$(curl_tg "$TG_URL/admin/api/teams?sort=percent&order=desc" \
    -H "Authorization: Bearer $(jwt '{"sub":"boss","role":"admin"}')")
assert_eq "200|t-gamma" "$(status)|$(echo "$out" | jq -r '.data[-1].id')" "an admin JWT"
log "ok: bad input and credentials"

# ---- PostgreSQL unreachable --------------------------------------------------------------------------
DB_URL="postgresql://postgres@127.0.0.1:$(free_port)/nowhere" start_admin nodb
for path in /admin/api/teams /admin/api/teams/t-alpha; do
    out=$(adm GET "$path")
    expect_error "$path without PostgreSQL" 503 null "$out"
done
log "ok: 503 without PostgreSQL"

#!/usr/bin/env bash
# Issue 8 §1: usage over a range grouped by user, team, model or day (exact costs, from
# inclusive, to exclusive), model prices effective-dated as SPEC §6 says (decimal text never
# through binary floating point), and the audit log newest first with a cursor.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
start_fake
DB_URL=$(new_db admin_reports)
load_uuid7 "$DB_URL"
start_admin tg

ms() { echo $(($(date -u -d "$1" +%s) * 1000)); }
sql() { psql_db "$DB_URL" -c "$1"; }

# ---- prices -----------------------------------------------------------------------------------
p=$(curl_tg -X PUT "$TG_URL/admin/api/prices/m-a" -H "Authorization: Bearer $ADMIN_KEY" \
    -d '{"input_usd_per_mtok":"9","cached_input_usd_per_mtok":"9","output_usd_per_mtok":"9","effective_from":"2025-01-01T00:00:00Z"}')
assert_eq 201 "$(status)" "a new price row"
p=$(curl_tg -X PUT "$TG_URL/admin/api/prices/m-a" -H "Authorization: Bearer $ADMIN_KEY" \
    -d '{"input_usd_per_mtok":"2.50","cached_input_usd_per_mtok":"1.25","output_usd_per_mtok":"10","effective_from":"2025-01-01"}')
assert_eq 200 "$(status)" "the same model and effective_from: replaced"
assert_eq '["m-a","2.50","1.25","10","2025-01-01T00:00:00.000Z"]' \
    "$(echo "$p" | jq -c '[.model, .input_usd_per_mtok, .cached_input_usd_per_mtok, .output_usd_per_mtok, .effective_from]')" "price reply, exact text"
assert_eq '{"cached_input_usd_per_mtok":"9","input_usd_per_mtok":"9"}' \
    "$(sql "SELECT before - 'model' - 'created_at' - 'effective_from' - 'output_usd_per_mtok' FROM audit_log WHERE action = 'price.set' ORDER BY id DESC LIMIT 1" | jq -cS '{input_usd_per_mtok, cached_input_usd_per_mtok}')" \
    "the audit row keeps the replaced price"
adm_ok PUT /admin/api/prices/m-b '{"input_usd_per_mtok":0.15,"output_usd_per_mtok":"0.6","effective_from":"2025-06-01T00:00:00+02:00"}' >/dev/null
adm_ok PUT /admin/api/prices/m-a '{"input_usd_per_mtok":"99","output_usd_per_mtok":"99","effective_from":"2099-01-01T00:00:00Z"}' >/dev/null
adm_ok PUT /admin/api/prices/m-tiny '{"input_usd_per_mtok":"0.000000000000000000000000000001","output_usd_per_mtok":"0.100000000000000005551115123126"}' >/dev/null
adm_ok PUT /admin/api/prices/azure/gpt-4o '{"input_usd_per_mtok":"5","output_usd_per_mtok":"15"}' >/dev/null
adm_ok PUT /admin/api/prices/openai%2Fgpt-4o '{"input_usd_per_mtok":"5","output_usd_per_mtok":"15"}' >/dev/null
l=$(adm_ok GET /admin/api/prices)
assert_eq '[["0.15",null,"0.6","2025-05-31T22:00:00.000Z",true]]' \
    "$(echo "$l" | jq -c '[.data[] | select(.model == "m-b") | [.input_usd_per_mtok, .cached_input_usd_per_mtok, .output_usd_per_mtok, .effective_from, .current]]')" \
    "a number is kept as its decimal text; effective_from in UTC"
assert_eq '[["2099-01-01T00:00:00.000Z",false],["2025-01-01T00:00:00.000Z",true]]' \
    "$(echo "$l" | jq -c '[.data[] | select(.model == "m-a") | [.effective_from, .current]]')" "newest first; the future row is not current yet"
assert_eq '["0.000000000000000000000000000001","0.100000000000000005551115123126"]' \
    "$(echo "$l" | jq -c '.data[] | select(.model == "m-tiny") | [.input_usd_per_mtok, .output_usd_per_mtok]')" "no rounding, no binary floating point"
assert_eq "azure/gpt-4o openai/gpt-4o" "$(echo "$l" | jq -r '[.data[].model | select(endswith("gpt-4o"))] | join(" ")')" "model names with slashes"
now_eff=$(echo "$l" | jq -r '.data[] | select(.model == "m-tiny") | .effective_from')
[ $(( $(date +%s) - $(date -d "$now_eff" +%s) )) -lt 120 ] || fail "effective_from defaults to now: $now_eff"
assert_eq 2 "$(adm_ok GET '/admin/api/prices?model=m-a' | jq '.data | length')" "filter by model"
# a priced model: the proxy's ledger rows get their cost from it
adm_ok PUT /admin/api/prices/gpt-4o-mini '{"input_usd_per_mtok":"0.15","output_usd_per_mtok":"0.6","effective_from":"2020-01-01"}' >/dev/null
assert_eq 200 "$(chat_user priced-user)" "a chat with a priced model"
wait_until 10 "the ledger row" sql_is "$DB_URL" "SELECT count(*) FROM ledger WHERE user_id = 'priced-user'" 1
assert_eq t "$(sql "SELECT cost_usd IS NOT NULL AND cost_usd = tg_ledger_cost(model, started_at, prompt_tokens, cached_tokens, completion_tokens) FROM ledger WHERE user_id = 'priced-user'")" \
    "the row is priced"
log "ok: prices"

# ---- usage --------------------------------------------------------------------------------------
seed_rows "$DB_URL" u1 ta m-a 3 "$(ms 2025-10-05T10:00:00Z)" 1000 1000 500 1
seed_rows "$DB_URL" u1 ta m-a 1 "$(ms 2025-10-01T00:00:00Z)" 1 1000 500 2   # from is inclusive
seed_rows "$DB_URL" u1 ta m-a 1 "$(ms 2025-11-01T00:00:00Z)" 1 1000 500 3   # to is exclusive
seed_rows "$DB_URL" u1 ta m-a 1 "$(ms 2025-09-30T23:59:59.999Z)" 1 1000 500 4
seed_rows "$DB_URL" u2 ta m-b 2 "$(ms 2025-10-06T10:00:00Z)" 1000 333 77 5
seed_rows "$DB_URL" u3 "" m-c 4 "$(ms 2025-10-07T23:59:59Z)" 1 10 10 6
R='from=2025-10-01T00:00:00Z&to=2025-11-01T00:00:00Z'
u=$(adm_ok GET "/admin/api/usage?$R")
assert_eq '[null,0,[]]' "$(echo "$u" | jq -c '[.group_by, .groups, .data]')" "totals only"
assert_eq '[10,4,4706,2194,6900]' "$(echo "$u" | jq -c '.totals | [.requests, .unpriced_requests, .prompt_tokens, .completion_tokens, .total_tokens]')" "totals"
assert_eq "2025-10-01T00:00:00.000Z 2025-11-01T00:00:00.000Z" "$(echo "$u" | jq -r '"\(.from) \(.to)"')" "range"
# the expected figures, independently, straight from the ledger
expect() { # GROUP_SQL KEY_NAME
    sql "SELECT json_agg(x ORDER BY x.k NULLS LAST) FROM (SELECT $1 AS k, count(*) AS requests,
           sum(prompt_tokens) AS p, sum(completion_tokens) AS c, sum(cached_tokens) AS ca,
           sum(reasoning_tokens) AS r, sum(total_tokens) AS t, sum(cost_usd)::text AS cost,
           count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced
         FROM ledger WHERE started_at >= '2025-10-01Z' AND started_at < '2025-11-01Z' GROUP BY 1) x" | jq -c .
}
got() { # JSON KEY_NAME
    echo "$1" | jq -c --arg k "$2" '[.data[] | {k: .[$k], requests, p: .prompt_tokens, c: .completion_tokens,
        ca: .cached_tokens, r: .reasoning_tokens, t: .total_tokens, cost: .cost_usd, unpriced: .unpriced_requests}]
        | sort_by(.k == null, .k)'
}
for g in "user|user_id|user_id" "team|team_id|team_id" "model|model|model" \
         "day|to_char((started_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')|day"; do
    IFS='|' read -r name expr key <<<"$g"
    u=$(adm_ok GET "/admin/api/usage?$R&group_by=$name")
    assert_eq "$(expect "$expr")" "$(got "$u" "$key")" "group_by=$name"
    assert_eq "$name" "$(echo "$u" | jq -r .group_by)" "group_by echoed"
done
assert_eq t "$(sql "SELECT '$(adm_ok GET "/admin/api/usage?$R&group_by=user" | jq -r '.data[] | select(.user_id == "u1") | .cost_usd')'::numeric = 4 * 0.0071875")" \
    "u1's exact cost: 4 x ((1000-250) x 2.50 + 250 x 1.25 + 500 x 10) / 1e6"
assert_eq "2025-10-01 2025-10-05 2025-10-06 2025-10-07" "$(adm_ok GET "/admin/api/usage?$R&group_by=day" | jq -r '[.data[].day] | join(" ")')" "days in order"
u=$(adm_ok GET "/admin/api/usage?$R&group_by=model&sort=cost_usd")
assert_eq "m-a m-b m-c" "$(echo "$u" | jq -r '[.data[].model] | join(" ")')" "by cost, unpriced last"
assert_eq "[null,4]" "$(echo "$u" | jq -c '.data[2] | [.cost_usd, .unpriced_requests]')" "an unpriced model"
u=$(adm_ok GET "/admin/api/usage?$R&group_by=user&sort=cost_usd&limit=1")
assert_eq '["u1",3]' "$(echo "$u" | jq -c '[.data[0].user_id, .groups]')" "top spender, with the number of groups"
assert_eq '[["ta",6],[null,4]]' "$(adm_ok GET "/admin/api/usage?$R&group_by=team" | jq -c '[.data[] | [.team_id, .requests]]')" "teams (null = no team)"
assert_eq "u3 u2 u1" "$(adm_ok GET "/admin/api/usage?$R&group_by=user&sort=key&order=desc" | jq -r '[.data[].user_id] | join(" ")')" "by key, descending"
u=$(adm_ok GET '/admin/api/usage?from=2025-10-05T10:00:01Z&to=2025-10-05T10:00:02Z')
assert_eq 1 "$(echo "$u" | jq .totals.requests)" "a one-second range"
u=$(adm_ok GET /admin/api/usage)
assert_eq "$(date -u +%Y-%m-01)T00:00:00.000Z" "$(echo "$u" | jq -r .from)" "default: this UTC month"
log "ok: usage"

# ---- audit log ----------------------------------------------------------------------------------
total=$(sql "SELECT count(*) FROM audit_log")
[ "$total" -ge 8 ] || fail "only $total audit rows"
want=$(sql "SELECT string_agg(id::text, ' ' ORDER BY id DESC) FROM audit_log")
ids=""; cursor=""; pages=0
while :; do
    pg=$(adm_ok GET "/admin/api/audit?limit=3${cursor:+&cursor=$cursor}")
    ids="$ids $(echo "$pg" | jq -r '[.data[].id] | join(" ")')"
    pages=$((pages + 1))
    [ "$(echo "$pg" | jq .has_more)" = true ] || break
    cursor=$(echo "$pg" | jq -r .next_cursor)
done
assert_eq "$want" "$(echo $ids)" "every audit row once, newest first"
assert_eq $(((total + 2) / 3)) "$pages" "pages"
a=$(adm_ok GET '/admin/api/audit?action=price.set&target=model:m-a')
assert_eq 3 "$(echo "$a" | jq '.data | length')" "filtered by action and target"
echo "$a" | jq -e '.data | all(.actor == "admin-key" and .action == "price.set" and (.at | test("Z$")))' >/dev/null ||
    fail "audit entries: $a"
assert_eq 0 "$(adm_ok GET '/admin/api/audit?actor=someone-else' | jq '.data | length')" "filtered by actor"
log "ok: audit log"

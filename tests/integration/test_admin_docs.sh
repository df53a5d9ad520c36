#!/usr/bin/env bash
# Issue 8 §8: every curl example of docs/admin-api.md runs against a seeded tollgate (with the
# page's own TOLLGATE / TOLLGATE_ADMIN_KEY variables) and does what the page says. Each ```sh
# block follows a `<!-- example: NAME -->` marker; a block without a marker, or a marker without
# a check here, fails the test.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
DOC="$TG_SOURCE_DIR/docs/admin-api.md"
start_fake
DB_URL=$(new_db admin_docs)
load_uuid7 "$DB_URL"
start_admin tg
sql() { psql_db "$DB_URL" -c "$1"; }

# ---- the examples -------------------------------------------------------------------------------
mkdir -p "$T/ex" "$T/out" "$T/work"
awk -v dir="$T/ex" '
    /^<!-- example: [a-z0-9-]+ -->$/ { name = $3; next }
    /^```sh$/ { if (name == "") { print "unnamed sh block at line " NR > "/dev/stderr"; exit 1 }
                out = dir "/" name ".sh"; inblock = 1; next }
    /^```$/ && inblock { inblock = 0; name = ""; next }
    inblock { print > out }
' "$DOC" || fail "docs/admin-api.md has an sh block without an example marker"
NAMES=$(grep -o '^<!-- example: [a-z0-9-]* -->$' "$DOC" | awk '{print $3}')
[ "$(echo "$NAMES" | wc -l)" = "$(grep -c '^```sh$' "$DOC")" ] || fail "markers and sh blocks do not pair up"
[ "$(echo "$NAMES" | wc -l)" = "$(ls "$T/ex" | wc -l)" ] || fail "duplicate example names"
example() { # NAME: runs it in the work directory; stdout in $T/out/NAME
    (cd "$T/work" && TOLLGATE="$TG_URL" TOLLGATE_ADMIN_KEY="$ADMIN_KEY" bash -euo pipefail "$T/ex/$1.sh") \
        >"$T/out/$1" 2>"$T/out/$1.err" || fail "example $1 failed: $(cat "$T/out/$1.err")"
    log "ran example $1"
}

# ---- seed: users, a key named laptop, last month's ledger, a user near their limit -------------
for u in alice bob carol; do assert_eq 200 "$(chat_user $u)" "$u seen"; done
sql "UPDATE users SET disabled = true WHERE id = 'carol'" >/dev/null
LAPTOP=$(adm_ok POST /admin/api/users/alice/keys '{"name":"laptop"}' | jq -r .key)
adm_ok PUT /admin/api/prices/m-doc '{"input_usd_per_mtok":"1","output_usd_per_mtok":"4","effective_from":"2020-01-01"}' >/dev/null
LAST=$(($(date -u -d "$(date -u +%Y-%m-01) -1 month" +%s) * 1000))
seed_rows "$DB_URL" alice "" m-doc 250 $((LAST + 1000)) 60000 1000 100 1
seed_rows "$DB_URL" bob "" m-doc 5 $((LAST + 2000)) 60000 400000 100000 2
seed_rows "$DB_URL" dave "" m-unpriced 3 $((LAST + 3000)) 60000 10 10 3
adm_ok PUT /admin/api/users/ella/quota '{"limit_tokens":100}' >/dev/null
seed_rows "$DB_URL" ella "" m-doc 1 $(($(now_ms) - 1000)) 1 80 10 4
# teams: research (its quota is set by an example) with one member's usage, design without quota
sql "INSERT INTO users (id, team_id) VALUES ('rita', 'research'), ('sam', 'design')" >/dev/null
seed_rows "$DB_URL" rita research m-doc 2 $(($(now_ms) - 1000)) 1 100 50 5
wait_until 10 "the chats' ledger rows" sql_is "$DB_URL" "SELECT count(*) FROM ledger WHERE model = 'gpt-4o-mini'" 3

# ---- run each example and check what it did -------------------------------------------------------
check_raise_quota() {
    assert_eq 5000000 "$(jq .effective_limit_tokens "$T/out/raise-quota")" "raise-quota: reply"
    assert_eq "5000000 month" "$(sql "SELECT limit_tokens || ' ' || period FROM quotas WHERE subject_kind = 'user' AND subject_id = 'alice'")" "raise-quota: stored"
}
check_team_and_default_quota() {
    assert_eq "team:50000000 default:2000000" "$(jq -rs 'map("\(.subject):\(.effective_limit_tokens)") | join(" ")' "$T/out/team-and-default-quota")" "quotas: replies"
    assert_eq "default:2000000,team:50000000" "$(sql "SELECT string_agg(subject_kind || ':' || limit_tokens, ',' ORDER BY subject_kind) FROM quotas WHERE subject_kind <> 'user'")" "quotas: stored"
}
check_user_detail() {
    assert_eq '[5000000,"user","laptop"]' "$(jq -c '[.quota.limit_tokens, .quota.source, (.keys[] | select(.revoked_at == null) | .name)]' "$T/out/user-detail")" "user-detail"
}
check_users_near_limit() {
    assert_eq "$(printf 'ella\t90\twarning')" "$(cat "$T/out/users-near-limit")" "users-near-limit"
}
check_teams_list() {
    assert_eq "$(printf 'design\t1\t0\t\t0\tok\nresearch\t1\t300\t50000000\t0\tok')" "$(cat "$T/out/teams-list")" "teams-list"
}
check_team_detail() {
    assert_eq '{"used":300,"limit":50000000,"members":[{"id":"rita","used_tokens":300}],"by_model":[{"model":"m-doc","total_tokens":300}]}' \
        "$(cat "$T/out/team-detail")" "team-detail"
}
check_create_key() {
    local k; k=$(cat "$T/out/create-key")
    [[ "$k" =~ ^tg-[A-Za-z0-9_-]{43}$ ]] || fail "create-key printed [$k]"
    assert_eq 200 "$(chat_key "$k")" "create-key: the key works"
}
check_revoke_key() {
    jq -e '.name == "laptop" and .revoked_at != null' "$T/out/revoke-key" >/dev/null || fail "revoke-key: $(cat "$T/out/revoke-key")"
    assert_eq 401 "$(chat_key "$LAPTOP")" "revoke-key: the key is refused"
}
check_disable_enable() {
    assert_eq "true false" "$(jq -rs 'map(.disabled | tostring) | join(" ")' "$T/out/disable-enable")" "disable-enable: replies"
    assert_eq "403 200" "$(chat_user bob) $(chat_user carol)" "disable-enable: in effect"
}
check_export_last_month() {
    local f; f="$T/work/ledger-$(date -u -d "$(date -u +%Y-%m-01) -1 month" +%Y-%m).csv"
    [ -f "$f" ] || fail "export-last-month: no $f"
    assert_eq "$(sql "SELECT count(*) FROM ledger WHERE started_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 month' AND started_at < date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")" \
        "$(psql_db "$DB_URL" <<SQL | tail -n 1
CREATE TEMP TABLE x (LIKE ledger);
\copy x FROM '$f' WITH (FORMAT csv, HEADER)
SELECT count(*) FROM x;
SQL
)" "export-last-month: every row of last month"
}
check_top_spenders() {
    assert_eq "bob alice dave" "$(cut -f1 "$T/out/top-spenders" | paste -sd' ')" "top-spenders: order"
    assert_eq t "$(sql "SELECT '$(head -n 1 "$T/out/top-spenders" | cut -f2)'::numeric = 5 * (400000 * 1 + 100000 * 4) / 1000000.0")" "top-spenders: bob's exact cost"
}
check_set_price() {
    assert_eq '["gpt-4o","2.50","1.25","10"]' "$(jq -c '[.model, .input_usd_per_mtok, .cached_input_usd_per_mtok, .output_usd_per_mtok]' "$T/out/set-price")" "set-price"
}
check_ledger_pages() {
    assert_eq "$(sql "SELECT count(*) FROM ledger WHERE user_id = 'alice'")" "$(wc -l <"$T/out/ledger-pages")" "ledger-pages: every row of alice, over several pages"
}
check_audit() {
    grep -q "$(printf '\tadmin-key\tquota.set\t')" "$T/out/audit" || fail "audit: $(cat "$T/out/audit")"
}
check_live_feed() {
    grep -q '^event: admin$' "$T/out/live-feed" || fail "live-feed: $(cat "$T/out/live-feed")"
}

for name in $NAMES; do
    fn="check_${name//-/_}"
    declare -F "$fn" >/dev/null || fail "no check for example $name"
    if [ "$name" = live-feed ]; then
        example "$name" &
        EX=$!
        wait_until 5 "the feed example to subscribe" test -s "$T/out/live-feed"
        adm_ok PUT /admin/api/users/frank/quota '{"limit_tokens":1}' >/dev/null
        wait "$EX" || fail "live-feed failed"
    else
        example "$name"
    fi
    "$fn"
done
log "ok: every example of docs/admin-api.md"

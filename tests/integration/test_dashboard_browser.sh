#!/usr/bin/env bash
# The admin dashboard (dashboard-static/, SPEC §7) in a real browser: Debian's chromium driven by
# playwright-core (tests/node/dashboard_browser.mjs) against tollgate serving the real
# dashboard-static/ directory, with users and ledger rows made by real requests through tollgate.
# The browser side signs in (401 / 403 shown), checks the users' figures, sets a quota, disables
# a user, creates / copies / revokes a key, watches the live feed, runs the usage report and the
# CSV download, adds a price, sets the default quota, lists the teams (limit, usage, members) and
# sets a team's quota from its row, reads the audit log and a user's own view, with no console
# error and no CSP violation. This side then checks the lasting effects with curl. Needs
# /usr/bin/chromium (apt-get install chromium) and tests/node/install.sh.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"

CHROMIUM_BIN=${CHROMIUM_BIN:-/usr/bin/chromium}
[ -x "$CHROMIUM_BIN" ] || fail "no $CHROMIUM_BIN: apt-get install chromium"
NODE_DIR="$TG_SOURCE_DIR/tests/node"
[ -f "$NODE_DIR/node_modules/playwright-core/package.json" ] ||
    fail "playwright-core missing: run tests/node/install.sh"

start_fake
DB_URL=$(new_db dash_browser)
start_admin tg DASHBOARD_DIR="$TG_SOURCE_DIR/dashboard-static"

# a price from long ago, so that the requests below get a cost
adm_ok PUT /admin/api/prices/gpt-4o-mini \
    '{"input_usd_per_mtok": "2.50", "output_usd_per_mtok": "10", "effective_from": "2020-01-01T00:00:00Z"}' >/dev/null

# real requests: alice 3 x 1,234 tokens, bob 2 x 6,000, carol 1 x 123
seed() { # USER PROMPT,COMPLETION COUNT
    for _ in $(seq 1 "$3"); do
        assert_eq 200 "$(chat_user "$1" -H "x-fake-usage: $2")" "request of $1"
    done
}
seed alice 1000,234 3
seed bob 5000,1000 2
seed carol 100,23 1
# team members through a JWT's team claim: research = dana 2 x 1,250 + erin 1 x 700, ops = frank
seed_team() { # USER TEAM PROMPT,COMPLETION COUNT
    local tok
    tok=$(jwt "{\"sub\":\"$1\",\"team\":\"$2\"}")
    for _ in $(seq 1 "$4"); do
        assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "$TG_URL/v1/chat/completions" \
            -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
            -H "x-fake-usage: $3" -d "$CHAT_BODY")" "request of $1 ($2)"
    done
}
seed_team dana research 1000,250 2
seed_team erin research 500,200 1
seed_team frank ops 10,5 1
wait_until 10 "ten ledger rows" sql_is "$DB_URL" "SELECT count(*) FROM ledger" 10
assert_eq "research:3200 ops:15" "$(adm_ok GET '/admin/api/teams?sort=used_tokens' |
    jq -r '[.data[] | "\(.id):\(.used_tokens)"] | join(" ")')" "the teams' usage"

RESULT="$T/result.json"
SHOT=${DASH_SCREENSHOT:-/tmp/dash.png}
(cd "$NODE_DIR" && CHROMIUM_BIN="$CHROMIUM_BIN" \
    node dashboard_browser.mjs "$TG_URL" "$ADMIN_KEY" "$SERVICE_KEY" "$SHOT" "$RESULT") ||
    fail "browser test failed (screenshot of the failure: $SHOT.failed.png)"

# what the browser changed, seen with curl
out=$(adm_ok GET /admin/api/users/alice)
assert_eq "4000 week user true" \
    "$(echo "$out" | jq -r '"\(.quota.limit_tokens) \(.quota.period) \(.quota.source) \(.user.disabled)"')" \
    "alice's quota and state"
assert_eq 403 "$(chat_user alice)" "disabled alice"
KEY=$(jq -r .key "$RESULT")
KEY_ID=$(jq -r .key_id "$RESULT")
assert_eq 401 "$(chat_key "$KEY")" "the key revoked in the browser"
out=$(adm_ok GET /admin/api/users/bob)
[ "$(echo "$out" | jq -r --arg id "$KEY_ID" '.keys[] | select(.id == $id) | .revoked_at != null')" = true ] ||
    fail "key not revoked: $out"
assert_eq 2000000 "$(adm_ok GET /admin/api/quota/default | jq -r .limit_tokens)" "default quota"
assert_eq "3500 team 91 warning" "$(adm_ok GET /admin/api/teams/research |
    jq -r '"\(.limit_tokens) \(.quota_source) \(.percent) \(.state)"')" "research's quota set in the browser"
assert_eq "3 2030-01-02" "$(adm_ok GET '/admin/api/prices?model=gpt-4o' |
    jq -r '.data[0] | "\(.input_usd_per_mtok | tonumber) \(.effective_from[0:10])"')" "price added"
for a in quota.set user.disable key.create key.revoke price.set; do
    n=$(adm_ok GET "/admin/api/audit?action=$a&actor=admin-key" | jq '.data | length')
    [ "$n" -ge 1 ] || fail "no audit row for $a"
done
log "ok: dashboard in chromium (screenshot $SHOT)"

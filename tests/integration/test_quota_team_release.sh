#!/usr/bin/env bash
# Issue 5 §1 (user and team quotas both enforced): a request refused by one subject leaves no
# trace on the other. Blocked by the TEAM quota while the member's own quota has room: the
# member's reservation is released (its `res` back to 0, `used` unchanged), the team's figures
# are unchanged, the ledger row is `blocked` with zero tokens, and nothing reached the upstream.
# The same for a member never seen before (its counter is built, then released), with requests
# of the member still in flight, and the mirror case (the user's own quota blocks, the team's
# reservation is released).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

start_fake
DB_URL=$(new_db qteam_rel)
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_RESERVE_DEFAULT_TOKENS=16
TEAM=tr-team
ensure_user tr-a $TEAM
ensure_user tr-b $TEAM
ensure_user tr-new $TEAM
set_quota team $TEAM 100
set_quota user tr-a 100000
set_quota user tr-new 100000

# figures SUBJECT KIND: "used res" of a period hash
figures() { echo "$(redis_used "$1" "${2:-u}") $(redis_res "$1" "${2:-u}")"; }
# blocked_by_team USER WHAT: one request refused by the team; nothing else changes
blocked_by_team() {
    local u=$1 what=$2 before_team before_fake before_rows
    before_team=$(figures $TEAM t)
    before_fake=$(fake_requests)
    before_rows=$(ledger_count "$u")
    chat "$u" true 16 -H 'x-fake-usage: 5,5' >"$T/out"
    assert_eq 402 "$(status)" "$what: blocked"
    assert_contains "$(cat "$T/out")" "Your team has used" "$what: the team's block"
    wait_ledger "$u" $((before_rows + 1))
    assert_eq "$before_fake" "$(fake_requests)" "$what: nothing reached the upstream"
    assert_eq "$before_team" "$(figures $TEAM t)" "$what: the team's used and res unchanged"
    assert_eq "0 0 0" "$(psql_db "$DB_URL" -F' ' -c "SELECT total_tokens, prompt_tokens, completion_tokens
        FROM ledger WHERE user_id = '$u' AND status = 'blocked'
        ORDER BY started_at DESC LIMIT 1")" "$what: a blocked row with zero tokens"
}

# tr-a is warm (its counter exists) and uses 10 tokens of the team's 100
chat tr-a true 16 -H 'x-fake-usage: 4,6' >/dev/null
assert_eq 200 "$(status)" "tr-a served"
wait_ledger tr-a 1
assert_eq "10 0" "$(figures tr-a)" "tr-a's own figures"
# tr-b exhausts the team
chat tr-b true 16 -H 'x-fake-usage: 50,50' >/dev/null
assert_eq 200 "$(status)" "tr-b served"
wait_ledger tr-b 1
assert_eq "110 0" "$(figures $TEAM t)" "the team is over its quota"

blocked_by_team tr-a "warm member"
assert_eq "10 0" "$(figures tr-a)" "warm member: its reservation released, used unchanged"
for i in 1 2 3; do blocked_by_team tr-a "warm member, again ($i)"; done
assert_eq "10 0" "$(figures tr-a)" "after four blocks: nothing held, nothing billed"
assert_eq 10 "$(ledger_sum tr-a)" "tr-a's ledger: only the served request"

# a member never seen before: its own counter is rebuilt (from an empty ledger), then released
blocked_by_team tr-new "new member"
assert_eq "0 0" "$(figures tr-new)" "new member: its counter built, nothing held"
log "ok: the team's block releases the member's own reservation"

# a member's stream in flight holds its own reservation; a team block of a second request
# releases only the second one
set_quota team $TEAM 1000
chat tr-a true 16 -H 'x-fake-usage: 1,1' >/dev/null
wait_ledger tr-a 6
assert_eq "12 0" "$(figures tr-a)" "tr-a served again once the team has room"
fake_clear
as_user tr-a /v1/chat/completions -d "$(chat_body true 16)" -H 'x-fake-usage: 1,1' \
    -H 'x-fake-chunks: 10' -H 'x-fake-delay-ms: 300' -D "$T/slow.h" -o "$T/slow.out" &
slow=$!
wait_fake_running 1
held=$(redis_res tr-a)
[ "$held" -gt 0 ] || fail "the slow stream holds a reservation ($held)"
team_res=$(redis_res $TEAM t)
assert_eq "$held" "$team_res" "the team holds the same reservation"
# the team is now short of room: its limit is what is used + what the stream holds
assert_eq 112 "$(redis_used $TEAM t)" "the team's used"
set_quota team $TEAM $((112 + held))
blocked_by_team tr-a "member with a stream in flight"
assert_eq "12 $held" "$(figures tr-a)" "only the in-flight stream's reservation remains"
wait "$slow"
wait_ledger tr-a 8
wait_eq 10 "tr-a's reservations all settled" 0 redis_res tr-a
wait_eq 10 "the team's reservations all settled" 0 redis_res $TEAM t
assert_eq "$(ledger_sum tr-a)" "$(redis_used tr-a)" "tr-a: Redis used == ledger sum"
team_sum=$(psql_db "$DB_URL" -c "SELECT SUM(total_tokens) FROM ledger WHERE team_id = '$TEAM'")
assert_eq "$team_sum" "$(redis_used $TEAM t)" "team: Redis used == ledger sum"
log "ok: a block beside a stream in flight releases only its own reservation"

# a member's pending 80 % notice, claimed by the reservation the team's block then released, is
# given back: the next reply the team lets through carries it
T2=tr-team2
ensure_user tr-c $T2
set_quota user tr-c 100
set_quota team $T2 1000
chat tr-c true 16 -H 'x-fake-usage: 40,45' >/dev/null
assert_eq 200 "$(status)" "tr-c crosses its own 80 %"
wait_ledger tr-c 1
assert_eq 1 "$(qredis HGET "$(quota_key tr-c)" notice)" "tr-c's notice is pending"
set_quota team $T2 85
TEAM=$T2 blocked_by_team tr-c "member with a pending notice"
assert_eq "85 0" "$(figures tr-c)" "member with a pending notice: nothing held"
assert_eq 1 "$(qredis HGET "$(quota_key tr-c)" notice)" "the notice claimed by the blocked request was given back"
set_quota team $T2 1000
chat tr-c true 16 -H 'x-fake-usage: 1,1' >"$T/out"
assert_eq 200 "$(status)" "tr-c served once the team has room"
assert_eq "1 1 stop" "$(notice_report "$T/out" 85)" "the given-back notice is shown"
log "ok: a team block gives the member's claimed notice back"

# the mirror: the user's own quota blocks; the team's reservation is released
set_quota team $TEAM 100000
set_quota user tr-b 100
before_team=$(figures $TEAM t)
before_fake=$(fake_requests)
chat tr-b true 16 >"$T/out"
assert_eq 402 "$(status)" "tr-b blocked by its own quota"
assert_contains "$(cat "$T/out")" "You have used" "the user's own block"
wait_ledger tr-b 2
assert_eq "$before_team" "$(figures $TEAM t)" "user block: the team's used and res unchanged"
assert_eq "100 0" "$(figures tr-b)" "user block: the user's figures unchanged"
assert_eq "$before_fake" "$(fake_requests)" "user block: nothing reached the upstream"
log "ok: the user's block releases the team's reservation"
log "PASS"

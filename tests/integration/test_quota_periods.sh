#!/usr/bin/env bash
# Issue 5 §1: periods in QUOTA_TIMEZONE end to end (the boundaries and DST are unit-tested in
# quota_math): x-quota-reset and GET /v1/quota's reset are the next period start in the
# configured zone, and the Redis counter is the local period's; period none has no reset.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

start_fake
DB_URL=$(new_db qperiods)

# expected_reset PERIOD ZONE: the next period start as RFC 3339 local time with its offset
expected_reset() {
    local period=$1 zone=$2 start
    case $period in
    day) start="$(TZ=$zone date +%Y-%m-%d) +1 day" ;;
    week) start="$(TZ=$zone date -d "$(TZ=$zone date +%Y-%m-%d) -$(($(TZ=$zone date +%u) - 1)) days" +%Y-%m-%d) +7 days" ;;
    month) start="$(TZ=$zone date +%Y-%m-01) +1 month" ;;
    esac
    # midnight of that local date (GNU date resolves it in $zone), printed with its offset
    TZ=$zone date -d "$(TZ=$zone date -d "$start" +%Y-%m-%d) 00:00" +%Y-%m-%dT%H:%M:%S%:z |
        sed 's/+00:00$/Z/'
}
expected_key() {
    local period=$1 zone=$2
    case $period in
    day) echo "d$(TZ=$zone date +%Y-%m-%d)" ;;
    week) echo "w$(TZ=$zone date -d "$(TZ=$zone date +%Y-%m-%d) -$(($(TZ=$zone date +%u) - 1)) days" +%Y-%m-%d)" ;;
    month) echo "m$(TZ=$zone date +%Y-%m)" ;;
    esac
}

check_zone() { # PERIOD ZONE USER
    local period=$1 zone=$2 user=$3 before after
    for _ in 1 2 3; do
        before=$(expected_reset "$period" "$zone")
        chat "$user" true 16 >/dev/null
        after=$(expected_reset "$period" "$zone")
        [ "$before" = "$after" ] && break # else a period boundary passed during the request
    done
    assert_eq 200 "$(status)" "$period/$zone: served"
    RESET_HDR=$(header x-quota-reset)
    assert_eq "$before" "$RESET_HDR" "QUOTA_PERIOD=$period QUOTA_TIMEZONE=$zone: x-quota-reset"
    assert_eq "$before" "$(get_quota "$user" | jq -r .reset)" "$period/$zone: GET /v1/quota reset"
    assert_eq "$period" "$(get_quota "$user" | jq -r .period)" "$period/$zone: GET /v1/quota period"
    assert_eq "${Q_PREFIX}{u:$user}:$(expected_key "$period" "$zone")" "$(quota_key "$user")" \
        "$period/$zone: the Redis counter is the local period's"
}

REDIS_PREFIX="qp1$$:" Q_PREFIX="qp1$$:"
start_tollgate day TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_PERIOD=day QUOTA_TIMEZONE=America/Sao_Paulo
check_zone day America/Sao_Paulo sp-user
assert_contains "$RESET_HDR" "-03:00" "Sao Paulo's offset in x-quota-reset"

REDIS_PREFIX="qp2$$:" Q_PREFIX="qp2$$:"
start_tollgate week TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_PERIOD=week QUOTA_TIMEZONE=Asia/Kolkata
check_zone week Asia/Kolkata in-user
assert_contains "$RESET_HDR" "T00:00:00+05:30" "Kolkata's offset in x-quota-reset"

REDIS_PREFIX="qp3$$:" Q_PREFIX="qp3$$:"
start_tollgate month TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_PERIOD=month QUOTA_TIMEZONE=Pacific/Auckland
check_zone month Pacific/Auckland nz-user

# a user's own period overrides QUOTA_PERIOD (quotas.period)
ensure_user nz-daily
set_quota user nz-daily 5000 day
check_zone day Pacific/Auckland nz-daily

# period none: a balance that never resets: no x-quota-reset, reset null, key "all"
REDIS_PREFIX="qp4$$:" Q_PREFIX="qp4$$:"
start_tollgate none TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_PERIOD=none QUOTA_DEFAULT_TOKENS=100
chat none-user true 16 -H 'x-fake-usage: 60,60' >/dev/null
assert_eq 200 "$(status)" "period none: served"
assert_eq null "$(get_quota none-user | jq -r .reset)" "period none: GET /v1/quota reset"
assert_eq "${Q_PREFIX}{u:none-user}:all" "$(quota_key none-user)" "period none: the counter"
assert_eq "-1" "$(qredis PTTL "$(quota_key none-user)")" "period none: the counter never expires"
wait_ledger none-user 1
body=$(chat none-user true 16)
assert_eq 402 "$(status)" "period none: blocked"
assert_eq "You have used 120 % of your AI quota (100 tokens). It does not reset; ask your administrator for more." \
    "$(jq -r .error.message <<<"$body")" "period none: the block message"
assert_eq "" "$(grep -i '^x-quota-reset:' "$T/h" || true)" "period none: no x-quota-reset on the block"
chat none-user2 true 16 >/dev/null
assert_eq 200 "$(status)" "period none: another user served"
assert_eq "" "$(grep -i '^x-quota-reset:' "$T/h" || true)" "period none: no x-quota-reset on a served reply"
log "ok"

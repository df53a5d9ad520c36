#!/usr/bin/env bash
# Issue 5 §1: a live tollgate crosses a daily period boundary that starts a DST change day.
# tollgate runs under libfaketime (Debian package faketime) with its clock started 20 s before
# the local midnight that begins next year's spring-forward Sunday in America/New_York
# (a 23-hour day), running normally from there. Before midnight a user exhausts a 100-token
# daily quota (402, reset = the coming midnight at -05:00); once tollgate's clock has passed
# midnight (polled through GET /v1/quota) the same user is served again, the headers count only
# the new day and reset at the next midnight at -04:00, the Redis counter is the new day's and
# the ledger rows, GET /v1/quota and the statement agree on which side of midnight each
# request fell. A stream started before midnight and finished after it is billed to the day it
# started in (its reservation's counter, as its ledger row's started_at says).
# Redis and PostgreSQL keep the real clock: the Lua scripts take every time from tollgate
# (ARGV), the ledger's times are tollgate's, and the one comparison Redis makes with its own
# clock (PEXPIREAT of the period keys) stays in its future because the fake date is next year.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_quota.sh"

FAKETIME_LIB=$(compgen -G '/usr/lib/*/faketime/libfaketimeMT.so.1' | head -n 1 || true)
[ -n "$FAKETIME_LIB" ] || fail "libfaketime is not installed (make deps-test installs faketime)"

ZONE=America/New_York
LEAD_S=20 # fake seconds between tollgate's start and the local midnight

# The DST change day: the first day of next year's March whose length in $ZONE is not 24 h.
YEAR=$(($(date -u +%Y) + 1))
DAY=""
for d in $(seq 1 31); do
    day=$(printf '%04d-03-%02d' "$YEAR" "$d")
    a=$(TZ=$ZONE date -d "$day 00:00" +%s)
    b=$(TZ=$ZONE date -d "$(date -d "$day +1 day" +%Y-%m-%d) 00:00" +%s)
    if [ $((b - a)) != 86400 ]; then DAY=$day; break; fi
done
[ -n "$DAY" ] || fail "no DST change in $ZONE in March $YEAR"
PREV=$(date -d "$DAY -1 day" +%Y-%m-%d)
NEXT=$(date -d "$DAY +1 day" +%Y-%m-%d)
PREV_START=$(TZ=$ZONE date -d "$PREV 00:00" +%s)
BOUNDARY=$(TZ=$ZONE date -d "$DAY 00:00" +%s) # the local midnight tollgate crosses
NEXT_RESET=$(TZ=$ZONE date -d "$NEXT 00:00" +%s)
rfc() { TZ=$ZONE date -d "@$1" +%Y-%m-%dT%H:%M:%S%:z; }
RESET1=$(rfc "$BOUNDARY")   # e.g. 2027-03-14T00:00:00-05:00
RESET2=$(rfc "$NEXT_RESET") # e.g. 2027-03-15T00:00:00-04:00
assert_eq 82800 $((NEXT_RESET - BOUNDARY)) "the spring-forward day of $ZONE lasts 23 hours"
[ "${RESET1: -6}" != "${RESET2: -6}" ] || fail "the offsets of $RESET1 and $RESET2 should differ"
FAKE_START=$(date -u -d "@$((BOUNDARY - LEAD_S))" '+%Y-%m-%d %H:%M:%S')
log "fake clock starts at $FAKE_START UTC; local midnight $RESET1; next reset $RESET2"

start_fake
DB_URL=$(new_db qboundary)
U=dst-user
ensure_user $U
# in the sanitizer build ASan's runtime must be preloaded before libfaketime
ASAN_LIB=$(ldd "$TOLLGATE_BIN" | awk '/libasan/ {print $3}')
# libfaketime: FAKETIME "@..." is the absolute start (read in TZ=UTC), the clock running from
# there; CLOCK_MONOTONIC stays real so libevent timers and the ledger's timed waits are untouched.
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY QUOTA_PERIOD=day QUOTA_TIMEZONE=$ZONE \
    QUOTA_DEFAULT_TOKENS=100 QUOTA_RESERVE_DEFAULT_TOKENS=16 \
    TZ=UTC LD_PRELOAD="${ASAN_LIB:+$ASAN_LIB }$FAKETIME_LIB" FAKETIME="@$FAKE_START" FAKETIME_DONT_FAKE_MONOTONIC=1 \
    FAKETIME_DONT_RESET=1

qheaders() { # "status limit used remaining state reset" of the last reply
    echo "$(status) $(header x-quota-limit-tokens) $(header x-quota-used-tokens)" \
        "$(header x-quota-remaining-tokens) $(header x-quota-state) $(header x-quota-reset)"
}
quota_fig() { # "used remaining state reset period" from GET /v1/quota
    get_quota $U | jq -r '"\(.used_tokens) \(.remaining_tokens) \(.state) \(.reset) \(.period)"'
}
key() { echo "${Q_PREFIX}{u:$U}:d$1"; }

# ---- before midnight: exhaust the day's 100 tokens -----------------------------------------
assert_eq "0 100 ok $RESET1 day" "$(quota_fig)" "before midnight: GET /v1/quota (tollgate's clock is faked)"
chat $U true 16 -H 'x-fake-usage: 60,60' >/dev/null
assert_eq "200 100 0 100 ok $RESET1" "$(qheaders)" "before midnight: served, reset = the coming midnight"
wait_ledger $U 1
body=$(chat $U true 16)
assert_eq "402 insufficient_quota" "$(status) $(jq -r .error.type <<<"$body")" "before midnight: blocked"
assert_eq "$RESET1" "$(header x-quota-reset)" "the block's x-quota-reset: the coming local midnight"
assert_eq "120" "$(header x-quota-used-tokens)" "the block's x-quota-used-tokens"
assert_eq "You have used 120 % of your daily AI quota (100 tokens). It resets on $(date -d "$DAY" '+%-d %B')." \
    "$(jq -r .error.message <<<"$body")" "the block's message names the coming day"
assert_eq "120" "$(qredis HGET "$(key "$PREV")" used)" "before midnight: the Redis counter is $PREV's"
assert_eq "120 0 exhausted $RESET1 day" "$(quota_fig)" "before midnight: GET /v1/quota"
wait_ledger $U 2

# a stream of another user that starts now and lasts longer than what is left of the day (one
# content chunk a second; the fake upstream sends at most max_tokens of them)
S=straddle-user
ensure_user $S
curl -sS -N -o "$T/straddle.sse" "$TG_URL/v1/chat/completions" \
    -H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: $S" \
    -H 'Content-Type: application/json' -d "$(chat_body true 64)" -H 'x-fake-usage: 7,5' \
    -H "x-fake-chunks: $((LEAD_S + 2))" -H 'x-fake-delay-ms: 1000' &
STRADDLE_PID=$!
TG_PIDS+=("$STRADDLE_PID")
wait_fake_running 1

# ---- tollgate's clock passes midnight -------------------------------------------------------
reset_moved() { [ "$(get_quota $U | jq -r .reset)" = "$RESET2" ]; }
wait_until $((LEAD_S + 30)) "tollgate's clock to pass $RESET1" reset_moved
assert_eq "0 100 ok $RESET2 day" "$(quota_fig)" "after midnight: GET /v1/quota counts the new day only"

# ---- after midnight: served again, the new day counted alone --------------------------------
chat $U true 16 -H 'x-fake-usage: 10,5' >/dev/null
assert_eq "200 100 0 100 ok $RESET2" "$(qheaders)" "after midnight: served again, reset = the next midnight"
wait_ledger $U 3
chat $U true 16 -H 'x-fake-usage: 10,5' >/dev/null
assert_eq "200 100 15 85 ok $RESET2" "$(qheaders)" "after midnight: x-quota-used-tokens counts the new day only"
wait_ledger $U 4
hdr_reset=$(date -d "$(header x-quota-reset)" +%s)
assert_eq 82800 $((hdr_reset - BOUNDARY)) "x-quota-reset is 23 hours after the midnight crossed"

assert_eq "30" "$(qredis HGET "$(key "$DAY")" used)" "after midnight: the Redis counter is $DAY's"
assert_eq "120" "$(qredis HGET "$(key "$PREV")" used)" "$PREV's counter is left as it was"
# the new day's key expires a week after its own reset (at -04:00), not the old day's
assert_eq "$(((NEXT_RESET + 7 * 86400) * 1000))" "$(qredis PEXPIRETIME "$(key "$DAY")")" \
    "the new day's counter expires from its own reset"

# ---- the straddling stream: started before midnight, finished after, billed to $PREV ----------
wait "$STRADDLE_PID" || fail "the straddling stream failed"
grep -q '^data: \[DONE\]' "$T/straddle.sse" || fail "the straddling stream did not complete"
wait_ledger $S 1
assert_eq "ok:12:before:after" "$(psql_db "$DB_URL" -c "SELECT status || ':' || total_tokens || ':' ||
        CASE WHEN started_at < to_timestamp($BOUNDARY) THEN 'before' ELSE 'after' END || ':' ||
        CASE WHEN finished_at < to_timestamp($BOUNDARY) THEN 'before' ELSE 'after' END
    FROM ledger WHERE user_id = '$S'")" "the straddling stream's row: started before, finished after midnight"
assert_eq "12 0" "$(qredis HMGET "${Q_PREFIX}{u:$S}:d$PREV" used res | tr '\n' ' ' | sed 's/ $//')" \
    "the straddling stream settled into $PREV's counter (its reservation released)"
chat $S true 16 >/dev/null
assert_eq "200 100 0 100 ok $RESET2" "$(qheaders)" "the straddling stream is not counted in $DAY"

# ---- the ledger and the statement: rows on both sides of midnight ---------------------------
rows=$(psql_db "$DB_URL" -c "SELECT string_agg(status || ':' || total_tokens || ':' ||
        CASE WHEN started_at < to_timestamp($BOUNDARY) THEN 'before' ELSE 'after' END || ':' ||
        to_char(started_at AT TIME ZONE '$ZONE', 'YYYY-MM-DD'), ' ' ORDER BY started_at)
    FROM ledger WHERE user_id = '$U' AND started_at >= to_timestamp($PREV_START)
        AND started_at < to_timestamp($NEXT_RESET)")
assert_eq "ok:120:before:$PREV blocked:0:before:$PREV ok:15:after:$DAY ok:15:after:$DAY" "$rows" \
    "ledger rows: status, tokens, side of midnight, local day of started_at"
# the rows are in their month's partition (the migrations make 3 months ahead; tollgate makes
# any later month itself), not in ledger_default
assert_eq "ledger_${DAY:0:4}_${DAY:5:2}" "$(psql_db "$DB_URL" -c "SELECT DISTINCT tableoid::regclass
    FROM ledger WHERE user_id IN ('$U', '$S')")" "the rows are in their month's partition"
stmt() { # [QUERY]: "<rows> <sum of total_tokens>" of GET /v1/quota/statement
    curl_tg "$TG_URL/v1/quota/statement${1:-}" -H "Authorization: Bearer $SERVICE_KEY" \
        -H "X-Tollgate-User: $U" | jq -r '"\(.data | length) \([.data[].total_tokens] | add)"'
}
assert_eq "2 30" "$(stmt)" "the statement of the current period: the new day's rows only"
from=$(date -u -d "@$PREV_START" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "@$NEXT_RESET" +%Y-%m-%dT%H:%M:%SZ)
assert_eq "4 150" "$(stmt "?from=$from&to=$to")" "the statement over both days"
first_after=$(curl_tg "$TG_URL/v1/quota/statement?from=$from&to=$to" \
    -H "Authorization: Bearer $SERVICE_KEY" -H "X-Tollgate-User: $U" |
    jq -r '[.data[].started_at | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601] as $t
        | ($t == ($t | sort | reverse)) and ($t[1] >= '"$BOUNDARY"') and ($t[2] < '"$BOUNDARY"')')
assert_eq true "$first_after" "the statement: newest first, the two new-day rows after midnight"
log "ok"

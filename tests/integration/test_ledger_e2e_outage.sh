#!/usr/bin/env bash
# Issue 6 item 2, end to end: a steady load of real requests (tests/node/ledger_load.mjs:
# chat, chat streams, Responses streams, embeddings) goes through tollgate while PostgreSQL
# (a private cluster: this test stops it) is down for 30 s. tollgate keeps serving; its rows
# go to the spool (GET /metrics tollgate_ledger_spool_* rise, /readyz names postgresql) and are
# replayed when PostgreSQL is back (the spool metrics fall to 0, /readyz is ready again).
# Afterwards the ledger holds exactly one row per request the clients completed — the sets of
# ids are equal, no row more — and the token sums equal what the clients were told.
source "$(dirname "$0")/lib_ledger.sh"

OUTAGE_S=${LEDGER_OUTAGE_S:-30}
RATE=${LEDGER_LOAD_RATE:-20} # attempts/s per loop, 4 loops
priv_pg_init
priv_pg_start
DB_URL=$(priv_new_db outage)
start_fake
start_tollgate tg TOLLGATE_SERVICE_KEY=$SERVICE_KEY AUTH_CACHE_TTL_S=3600
USERS=(load-a load-b load-c)
warm_users "${USERS[@]}"
wait_until 20 "the warm-up rows" ledger_drained

start_load load --run O --loops 4 --rate "$RATE" --users "$(IFS=,; echo "${USERS[*]}")"
LOAD=$LOAD_PID
over() { [ "$(load_completed load)" -ge "$1" ]; }
wait_until 30 "load before the outage" over 200
before=$(load_completed load)
log "stopping PostgreSQL for ${OUTAGE_S}s ($before requests completed so far)"
priv_pg_stop fast
t_stop=$(date +%s)

# While it is down: sample /readyz and the spool metrics twice a second.
named_pg=0 max_bytes=0 max_files=0
while [ $(($(date +%s) - t_stop)) -lt "$OUTAGE_S" ]; do
    code=$(curl -sS -o "$T/ready.json" -w '%{http_code}' "$TG_URL/readyz" || echo 000)
    if [ "$code" = 503 ] && jq -e '.checks.postgresql == "unreachable" and (.failing | test("postgresql"))' \
        "$T/ready.json" >/dev/null; then
        named_pg=$((named_pg + 1))
    fi
    b=$(metric tollgate_ledger_spool_bytes)
    f=$(metric tollgate_ledger_spool_files)
    [ "${b:-0}" -gt "$max_bytes" ] && max_bytes=$b
    [ "${f:-0}" -gt "$max_files" ] && max_files=$f
    sleep 0.5
done
during=$(($(load_completed load) - before))
# the rows of the requests that completed last reach the spool at the ledger thread's next
# flush (LEDGER_FLUSH_MS), a moment after the client saw its last byte
spooled_all() { [ "$(metric tollgate_ledger_rows_spooled_total)" -ge "$during" ]; }
wait_until 5 "the rows of the completed requests to reach the spool" spooled_all || true
spooled=$(metric tollgate_ledger_rows_spooled_total)
log "outage: $during requests completed; /readyz named postgresql in $named_pg samples; spool up to $max_bytes bytes in $max_files files; $spooled rows spooled; pg_up=$(metric tollgate_ledger_pg_up)"
[ "$named_pg" -ge $((OUTAGE_S / 2)) ] || fail "/readyz did not name postgresql while it was down ($named_pg samples)"
[ "$max_bytes" -gt 0 ] && [ "$max_files" -gt 0 ] || fail "the spool metrics did not rise"
assert_eq 0 "$(metric tollgate_ledger_pg_up)" "pg_up during the outage"
# tollgate kept serving (the users are cached; nothing on the request path needs PostgreSQL)
[ "$during" -gt $((4 * RATE * OUTAGE_S / 3)) ] || fail "too few requests completed during the outage: $during"
[ "$spooled" -ge "$during" ] || fail "rows spooled ($spooled) < requests completed during the outage ($during)"
ls "$T"/spool-tg/spool-*.log >/dev/null || fail "no spool segment on disk"

priv_pg_start
t_back=$(date +%s)
log "PostgreSQL back"
drained_spool() { [ "$(metric tollgate_ledger_spool_bytes)" = 0 ] && [ "$(metric tollgate_ledger_spool_files)" = 0 ]; }
wait_until 120 "the spool to be replayed" drained_spool
log "spool replayed in $(($(date +%s) - t_back)) s"
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$TG_URL/readyz")" = 200 ]; }
wait_until 30 "/readyz ready again" ready
# the load goes on a little after the replay, then stops
after=$(load_completed load)
wait_until 30 "load after the outage" over $((after + 100))
stop_load load "$LOAD"
wait_until 60 "the ledger to drain" ledger_drained
ls "$T"/spool-tg/spool-*.log >/dev/null 2>&1 && fail "spool segments left after the replay"
assert_eq 0 "$(metric tollgate_ledger_torn_records_total)" "torn records"
grep -q 'spooling rows to' "$TG_LOG" || fail "spooling not logged"
grep -q 'spool replayed' "$TG_LOG" || fail "replay not logged"

summary=$(check_load "$DB_URL" strict "$T/warm.jsonl" "$T/load.jsonl")
log "PASS: $summary; $spooled rows went through the spool"

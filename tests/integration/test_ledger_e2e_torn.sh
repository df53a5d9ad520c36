#!/usr/bin/env bash
# Issue 6 item 2 (torn spool), end to end through tollgate's start-up: a first tollgate serves
# real requests while PostgreSQL (a private cluster) is down, so their rows go to its spool;
# it stops (SIGTERM). The last record of its last spool segment is then torn (the file cut a
# few bytes short, as a crash in the middle of a write leaves it). A new tollgate started on
# that spool directory, with PostgreSQL back, replays every record up to the tear, reports the
# tear (log line + tollgate_ledger_torn_records_total) and keeps the segment as .torn; the
# ledger then holds every other request once with the tokens its client was told.
source "$(dirname "$0")/lib_ledger.sh"

N=${LEDGER_TORN_REQUESTS:-60}
priv_pg_init
priv_pg_start
DB_URL=$(priv_new_db torn)
start_fake
SPOOL=$T/spool
TG_ENV=("TOLLGATE_SERVICE_KEY=$SERVICE_KEY" AUTH_CACHE_TTL_S=3600 "LEDGER_SPOOL_DIR=$SPOOL")
start_tollgate first "${TG_ENV[@]}"
FIRST=$TG_PID
warm_users torn-a torn-b
wait_until 20 "the warm-up rows" ledger_drained
priv_pg_stop fast
log "PostgreSQL down; $N requests whose rows can only go to the spool"
start_load spooled --run S --loops 2 --rate 50 --max-attempts "$N" --users torn-a,torn-b
wait "$LOAD_PID" || fail "load client failed"
log "load: $(cat "$T/spooled.out")"
assert_eq "$N" "$(load_completed spooled)" "complete answers while PostgreSQL was down"
all_spooled() { [ "$(metric tollgate_ledger_rows_spooled_total)" -ge "$N" ]; }
wait_until 30 "every row in the spool" all_spooled
kill -TERM "$FIRST"
rc=0
wait "$FIRST" || rc=$?
assert_eq 0 "$rc" "exit status of the first tollgate (SIGTERM)"

segs=$(ls "$SPOOL"/spool-*.log)
last=$(echo "$segs" | sort | tail -n 1)
size=$(stat -c %s "$last")
cp "$last" "$T/segment.orig"
truncate -s $((size - 7)) "$last"
log "spool: $(echo "$segs" | wc -l) segment(s); cut the last record of $(basename "$last") ($size bytes) by 7 bytes"

priv_pg_start
start_tollgate second "${TG_ENV[@]}"
wait_until 60 "the replay" ledger_drained
grep -q "torn last spool record in $last" "$TG_LOG" || fail "the tear was not logged: $(grep -i spool "$TG_LOG" | tail -5)"
log "logged: $(grep -o 'torn last spool record in [^"]*' "$TG_LOG")"
assert_eq 1 "$(metric tollgate_ledger_torn_records_total)" "tollgate_ledger_torn_records_total"
[ -f "$last.torn" ] || fail "the torn segment was not kept as .torn"
ls "$SPOOL"/spool-*.log >/dev/null 2>&1 && fail "spool segments left after the replay"

# every spooled request but the torn one, once each, exactly as its client was told
cat "$T/warm.jsonl" "$T/spooled.jsonl" | jq -r '[.cid, .rid, .t] | @csv' >"$T/told.csv"
out=$(psql_db "$DB_URL" -F ' ' <<SQL
CREATE TABLE told (cid text, rid uuid, t bigint);
\copy told FROM '$T/told.csv' WITH (FORMAT csv)
SELECT (SELECT count(*) FROM told t WHERE NOT EXISTS (SELECT 1 FROM ledger l WHERE l.request_id = t.rid)),
       (SELECT string_agg(cid, ',') FROM told t WHERE NOT EXISTS (SELECT 1 FROM ledger l WHERE l.request_id = t.rid)),
       (SELECT count(*) FROM ledger l WHERE NOT EXISTS (SELECT 1 FROM told t WHERE t.rid = l.request_id)),
       (SELECT count(*) FROM told t JOIN ledger l ON l.request_id = t.rid
         WHERE l.total_tokens <> t.t OR l.client_request_id <> t.cid),
       (SELECT count(*) - count(DISTINCT request_id) FROM ledger)
SQL
)
read -r missing which extra differ twice <<<"$out"
log "ledger: missing=$missing ($which) extra=$extra differ=$differ twice=$twice"
assert_eq 1 "$missing" "requests missing from the ledger (the torn record)"
[[ $which == S-* ]] || fail "the missing row should be one spooled while PostgreSQL was down: $which"
assert_eq 0 "$extra" "rows of requests no client made"
assert_eq 0 "$differ" "rows that differ from what the client was told"
assert_eq 0 "$twice" "duplicate rows"
# The torn record is the last frame of the original segment (frames: u32 length, u32 crc,
# payload; the request id at payload offset 4): the row missing is exactly that request's.
torn_rid=$(python3 - "$T/segment.orig" <<'PY'
import struct, sys, uuid
data = open(sys.argv[1], 'rb').read()
off = last = 0
while off + 8 <= len(data):
    (n,) = struct.unpack_from('<I', data, off)
    last = off
    off += 8 + n
assert off == len(data), 'the original segment does not end at a frame boundary'
print(uuid.UUID(bytes=data[last + 12:last + 28]))
PY
)
want_rid=$(jq -r --arg c "$which" 'select(.cid == $c) | .rid' "$T/spooled.jsonl")
assert_eq "$want_rid" "$torn_rid" "the missing request is the one whose record was torn"

# The client still has that answer; tollgate goes on normally after the replay.
curl_tg "$TG_URL/v1/chat/completions" -H "Authorization: Bearer $SERVICE_KEY" -H 'X-Tollgate-User: torn-a' \
    -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' >/dev/null
rid=$(header x-request-id)
wait_until 20 "the new row" ledger_drained
assert_eq 1 "$(psql_db "$DB_URL" -c "SELECT count(*) FROM ledger WHERE request_id = '$rid'")" "a request after the replay"
log "PASS: $((N - 1)) of $N spooled rows replayed up to the tear, the torn one reported"

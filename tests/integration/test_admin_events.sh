#!/usr/bin/env bash
# Issue 8 §3: GET /admin/api/events (SSE): admin changes arrive live (the committed audit row,
# never a secret), quota warnings and exhaustions too; a subscriber that stops reading is dropped
# and slows nobody down: a flood of changes with a stalled subscriber connected leaves the other
# subscriber complete and the proxy's latency intact (tests/node/admin_events_flood.mjs).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
start_fake
DB_URL=$(new_db admin_events)
start_admin tg QUOTA_WARN_PERCENT=80 QUOTA_DEFAULT_TOKENS=1000000

curl -sN "$TG_URL/admin/api/events" -H "Authorization: Bearer $ADMIN_KEY" -D "$T/sse.h" >"$T/sse" &
SSE=$!; TG_PIDS+=("$SSE")
wait_until 10 "the subscription" grep -q "tollgate events" "$T/sse"
assert_eq "text/event-stream" "$(grep -i '^content-type:' "$T/sse.h" | cut -d' ' -f2 | tr -d '\r')" "content type"

# admin changes
adm_ok PUT /admin/api/users/ev-u/quota '{"limit_tokens":20}' >/dev/null
KEY=$(adm_ok POST /admin/api/users/ev-u/keys '{"name":"feed"}' | jq -r .key)
adm_ok POST /admin/api/users/ev-v/disable >/dev/null
adm_ok PUT /admin/api/prices/m-ev '{"input_usd_per_mtok":"1","output_usd_per_mtok":"2"}' >/dev/null
n_audit=$(psql_db "$DB_URL" -c "SELECT count(*) FROM audit_log")
admin_events() { grep -A1 '^event: admin$' "$T/sse" | grep '^data: ' | cut -c7-; }
has_n_admin() { [ "$(admin_events | wc -l)" -ge "$1" ]; }
wait_until 10 "$n_audit admin events" has_n_admin "$n_audit"
assert_eq "$(psql_db "$DB_URL" -c "SELECT string_agg(id || ' ' || action || ' ' || target, ',' ORDER BY id) FROM audit_log")" \
    "$(admin_events | jq -r '"\(.id) \(.action) \(.target)"' | paste -sd,)" "every audit row, live, in order"
admin_events | jq -se 'map(select(.action == "quota.set")) | length == 1 and .[0].after.limit_tokens == 20 and .[0].actor == "admin-key"' >/dev/null ||
    fail "the quota.set event: $(admin_events | grep quota.set)"
! grep -q -- "$KEY" "$T/sse" || fail "the new key's secret is on the feed"

# quota crossings (published by the quota engine)
assert_eq 200 "$(chat_user ev-u -H 'x-fake-usage: 9,8')" "17 of 20 tokens"
wait_until 10 "the warning event" grep -q '^event: quota.warning$' "$T/sse"
assert_eq 200 "$(chat_user ev-u -H 'x-fake-usage: 2,2')" "21 of 20 tokens"
wait_until 10 "the exhausted event" grep -q '^event: quota.exhausted$' "$T/sse"
grep -A1 '^event: quota.exhausted$' "$T/sse" | grep '^data: ' | cut -c7- |
    jq -se 'length == 1 and .[0].user_id == "ev-u" and .[0].limit_tokens == 20 and .[0].used_tokens == 21' >/dev/null ||
    fail "exhausted event data"
log "ok: admin changes and quota crossings arrive live"

# a stalled subscriber under a flood: a socket with a 4 KiB receive buffer that reads the
# response head and then nothing, until told to read to the end (to see the server's close)
dropped_total() { curl -s "$TG_URL/metrics" | awk '/^tollgate_events_dropped_total / {print $2}'; }
DROPPED_BEFORE=$(dropped_total)
python3 - "$TG_PORT" "$ADMIN_KEY" "$T/stalled" <<'PY' &
import os, socket, sys, time
port, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(f"GET /admin/api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
head = s.recv(200)
open(out + ".subscribed", "w").write(head.decode(errors="replace").split("\r\n")[0])
while not os.path.exists(out + ".read"):
    time.sleep(0.05)
s.settimeout(20)
n, eof = len(head), False
try:
    while True:
        d = s.recv(65536)
        if not d:
            eof = True
            break
        n += len(d)
except (socket.timeout, ConnectionResetError):
    pass
open(out, "w").write(f"{n} {'closed' if eof else 'open'}\n")
PY
STALLED=$!; TG_PIDS+=("$STALLED")
wait_until 10 "the stalled subscriber" test -s "$T/stalled.subscribed"
assert_eq "HTTP/1.1 200 OK" "$(cat "$T/stalled.subscribed")" "the stalled subscriber's answer"
DROPPED_BEFORE=$DROPPED_BEFORE node "$TG_SOURCE_DIR/tests/node/admin_events_flood.mjs" "$TG_URL" "$ADMIN_KEY" "$SERVICE_KEY" \
    "${ADMIN_FLOOD_CHANGES:-1500}" >"$T/flood.json" || fail "flood: $(cat "$T/flood.json")"
log "flood: $(cat "$T/flood.json")"
touch "$T/stalled.read"
wait "$STALLED" || fail "the stalled reader failed"
read -r got state <"$T/stalled"
live=$(jq .live_bytes "$T/flood.json")
log "the stalled subscriber got $got bytes of $live, connection $state"
assert_eq closed "$state" "the server closed the stalled subscriber"
[ "$got" -lt $((live / 2)) ] || fail "the stalled subscriber got $got of $live bytes"
grep -q '"msg":"events: dropping a subscriber that stopped reading' "$TG_LOG" || fail "no drop in the log"
kill -0 "$SSE" || fail "the first subscriber was disconnected"
log "ok: a stalled subscriber is dropped and slows nobody down"

#!/usr/bin/env bash
# design.md §6: "a row is safe from kill -9 the moment the worker has written it — before the
# last byte goes to the client". Checked through real sockets: tollgate runs with
# LEDGER_FLUSH_MS=60000, so the ledger thread writes nothing to PostgreSQL during the test and
# a row can only survive a kill -9 in the worker's ring file. The moment the client has the
# end of its answer — the whole Content-Length body; a stream's usage chunk and `data: [DONE]`
# — tollgate is killed with SIGKILL, a new one is started on the same LEDGER_SPOOL_DIR, and
# the row must be there, with the tokens the client was told.
#
# The upstream (tests/node/ledger_slow_end_upstream.mjs) keeps a stream's HTTP body open for
# 3 s after `data: [DONE]`, as a gateway whose terminating chunk comes in a later TCP segment.
source "$(dirname "$0")/lib_ledger.sh"

HOLD_MS=3000
node "$NODE_DIR/ledger_slow_end_upstream.mjs" --port-file "$T/up.port" --hold-ms $HOLD_MS \
    >"$T/upstream.log" 2>&1 &
TG_PIDS+=($!)
wait_until 10 "the upstream" test -s "$T/up.port"
# shellcheck disable=SC2034 # read by start_tollgate (lib.sh)
UPSTREAM="http://127.0.0.1:$(cat "$T/up.port")"
use_new_db llast
SPOOL=$T/spool
HOLD_ROWS=("TOLLGATE_SERVICE_KEY=$SERVICE_KEY" "LEDGER_SPOOL_DIR=$SPOOL" LEDGER_FLUSH_MS=60000
    LEDGER_BATCH_ROWS=100000 QUOTA_DEFAULT_TOKENS=-1)
REQ=(-H "Authorization: Bearer $SERVICE_KEY" -H 'X-Tollgate-User: last-byte' -H 'Content-Type: application/json')

# row_after_restart RID WHAT: restarts tollgate on the spool (normal flushing) and checks the row
row_after_restart() {
    start_tollgate "after-$2" TOLLGATE_SERVICE_KEY=$SERVICE_KEY LEDGER_SPOOL_DIR=$SPOOL QUOTA_DEFAULT_TOKENS=-1
    wait_until 30 "the recovered rows" ledger_drained
    local got
    got=$(psql_db "$DB_URL" -c "SELECT count(*), min(prompt_tokens || ' ' || completion_tokens || ' ' ||
        cached_tokens || ' ' || reasoning_tokens || ' ' || total_tokens || ' ' || status) FROM ledger
        WHERE request_id = '$1'")
    assert_eq "1|21 9 5 2 30 ok" "$got" "$2: the row of a complete answer after kill -9 (count|tokens status)"
    kill -TERM "$TG_PID"
    wait "$TG_PID" || fail "$2: the restarted tollgate did not exit cleanly"
}

# 1. Non-streamed (Content-Length): killed as soon as curl has the whole body.
start_tollgate json "${HOLD_ROWS[@]}"
curl_tg "$TG_URL/v1/chat/completions" "${REQ[@]}" \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' >"$T/json.body"
kill -9 "$TG_PID"
wait "$TG_PID" 2>/dev/null || true
rid=$(header x-request-id)
assert_eq 30 "$(jq .usage.total_tokens "$T/json.body")" "non-streamed: told total"
log "non-streamed answer complete, tollgate killed -9"
row_after_restart "$rid" non-streamed

# 2. Streamed: killed as soon as the client has `data: [DONE]` (the usage chunk before it).
start_tollgate sse "${HOLD_ROWS[@]}"
t0=$(date +%s%3N)
curl -sS -N -D "$T/sse.h" -o "$T/sse.body" "$TG_URL/v1/chat/completions" "${REQ[@]}" \
    -d '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}' \
    2>"$T/sse.curl.err" &
CURL=$!
has_done() { grep -q '^data: \[DONE\]' "$T/sse.body" 2>/dev/null; }
wait_until 15 "the client to have [DONE]" has_done
t_done=$(($(date +%s%3N) - t0))
kill -9 "$TG_PID"
wait "$TG_PID" 2>/dev/null || true
wait "$CURL" 2>/dev/null || true
rid=$(grep -i '^x-request-id:' "$T/sse.h" | cut -d: -f2- | tr -d '\r ')
told=$(sed -n 's/^data: //p' "$T/sse.body" | grep -v '^\[DONE\]' | jq -r 'select(.usage != null) | .usage.total_tokens')
assert_eq 30 "$told" "streamed: told total"
log "stream: the client had [DONE] after $t_done ms (upstream holds its end $HOLD_MS ms); tollgate killed -9"
row_after_restart "$rid" streamed
log "PASS"

#!/usr/bin/env bash
# Issue 8 §2: GET /admin/api/ledger.csv is streamed. One million seeded rows (text with commas,
# quotes, newlines and non-ASCII; NULLs; exact numerics; microsecond times) are exported while
# tollgate's RSS is sampled: it stays flat, also when the client reads slowly (backpressure).
# The file loads back with COPY ... FROM ... (FORMAT csv, HEADER) into a table of the same
# columns, row for row (EXCEPT ALL both ways is empty). A client that leaves mid-export stops
# the COPY; a third concurrent export gets 429.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
ROWS=${ADMIN_CSV_ROWS:-1000000}
MAX_GROWTH_KB=$((30 * 1024))
start_fake
DB_URL=$(new_db admin_csv)
load_uuid7 "$DB_URL"
MONTH=$(date -u +%Y-%m-01)

t0=$(now_ms)
# the secondary indexes only slow the seeding down; the export walks the primary key
psql_db "$DB_URL" -v rows="$ROWS" -v month="$MONTH" >/dev/null <<'SQL'
DROP INDEX ledger_user_started_idx, ledger_team_started_idx, ledger_started_brin;
INSERT INTO ledger (request_id, user_id, team_id, model, route, status, prompt_tokens,
                    completion_tokens, cached_tokens, reasoning_tokens, total_tokens, cost_usd,
                    count_source, upstream_status, started_at, finished_at, ttfb_ms, latency_ms,
                    upstream_call_id, client_request_id)
SELECT tg_test_uuid7(t.ts, i), 'user-' || (i % 500),
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'team-' || (i % 13) END,
       CASE WHEN i % 1000 = 0 THEN 'odd,"model"' ELSE 'gpt-4o-mini' END,
       '/v1/chat/completions',
       (ARRAY['ok', 'upstream_error', 'client_aborted', 'ok'])[1 + i % 4],
       i % 5000, i % 700, (i % 5000) / 3, (i % 700) / 4, i % 5000 + i % 700,
       CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 5000) * 0.00000015 + (i % 700) * 0.0000006 END,
       CASE WHEN i % 6 = 0 THEN 'estimated' ELSE 'upstream' END,
       CASE WHEN i % 9 = 0 THEN NULL ELSE 200 END,
       t.ts, t.ts + (i % 3000) * interval '1.5 ms' + interval '0.000001 s',
       CASE WHEN i % 5 = 0 THEN NULL ELSE i % 900 END, i % 3000,
       md5(i::text),
       CASE WHEN i % 997 = 0 THEN E'a,b"c\nd\\e \u00e9 \r' WHEN i % 991 = 0 THEN '' ELSE NULL END
  FROM generate_series(1, :rows::bigint) AS i,
       LATERAL (SELECT :'month'::timestamptz + i * interval '2 ms' AS ts) AS t;
ANALYZE ledger;
SQL
log "seeded $ROWS rows in $(( $(now_ms) - t0 )) ms"

# (in a sanitizer build, ASan's quarantine of freed memory would count as growth: keep it small)
start_admin tg ASAN_OPTIONS=quarantine_size_mb=8
PID=$TG_PID
sample_rss() { # OUT_FILE: RSS (KiB) every 50 ms until $T/sample.off exists
    while [ ! -f "$T/sample.off" ] && kill -0 "$PID" 2>/dev/null; do
        rss_kb "$PID" >>"$1"
        sleep 0.05
    done
}
peak_growth() { # BASE_KB FILE
    sort -n "$2" | tail -n 1 | awk -v b="$1" '{print $1 - b}'
}
csv_rows() { # FILE: the number of CSV records (a record may span lines), counted by PostgreSQL
    psql_db "$DB_URL" <<SQL | tail -n 1
CREATE TEMP TABLE n (LIKE ledger);
\copy n FROM '$1' WITH (FORMAT csv, HEADER)
SELECT count(*) FROM n;
SQL
}
csv() { # OUT_FILE [curl args...] -> curl's exit status
    local out=$1; shift
    curl -sS -D "$T/h" -o "$out" "$TG_URL/admin/api/ledger.csv" -H "Authorization: Bearer $ADMIN_KEY" "$@"
}

# warm up (first connection, first COPY), then the baseline
csv "$T/warm.csv" -G --data-urlencode "to=${MONTH}T00:00:01Z"
assert_eq 200 "$(status)" "a small export"
BASE=$(rss_kb "$PID")

# ---- the whole ledger, read as fast as the client can --------------------------------------
rm -f "$T/sample.off"; sample_rss "$T/rss_fast" &
SAMPLER=$!
t0=$(now_ms)
csv "$T/ledger.csv"
ms=$(( $(now_ms) - t0 ))
touch "$T/sample.off"; wait "$SAMPLER"
assert_eq 200 "$(status)" "export status"
assert_eq "text/csv; charset=utf-8" "$(header content-type)" "content type"
assert_eq chunked "$(header transfer-encoding)" "streamed (chunked), not buffered"
growth=$(peak_growth "$BASE" "$T/rss_fast")
bytes=$(stat -c %s "$T/ledger.csv")
log "export: $ROWS rows, $((bytes / 1048576)) MiB in $ms ms ($((ROWS * 1000 / (ms > 0 ? ms : 1))) rows/s); RSS base $((BASE / 1024)) MiB, peak growth $((growth / 1024)) MiB over $(wc -l <"$T/rss_fast") samples"
[ "$growth" -lt "$MAX_GROWTH_KB" ] || fail "RSS grew by $growth KiB during the export"
assert_eq "$(psql_db "$DB_URL" -c "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'ledger' AND table_schema = 'public'")" \
    "$(head -n 1 "$T/ledger.csv")" "header: the ledger's columns in order"

# ---- load it back, row for row ----------------------------------------------------------------
t0=$(now_ms)
psql_db "$DB_URL" >/dev/null <<SQL
CREATE TABLE ledger_copy (LIKE ledger);
\copy ledger_copy FROM '$T/ledger.csv' WITH (FORMAT csv, HEADER)
SQL
assert_eq "$ROWS|$ROWS" "$(psql_db "$DB_URL" -c "SELECT (SELECT count(*) FROM ledger), (SELECT count(*) FROM ledger_copy)")" "row counts"
assert_eq "0|0" "$(psql_db "$DB_URL" <<'SQL' | tail -n 1
SET work_mem = '256MB';
SELECT (SELECT count(*) FROM (SELECT * FROM ledger EXCEPT ALL SELECT * FROM ledger_copy) a),
       (SELECT count(*) FROM (SELECT * FROM ledger_copy EXCEPT ALL SELECT * FROM ledger) b);
SQL
)" "EXCEPT ALL both ways"
assert_eq "$(psql_db "$DB_URL" -c "SELECT count(*) FROM ledger WHERE client_request_id LIKE E'a,b\"c\nd%'")" \
    "$(psql_db "$DB_URL" -c "SELECT count(*) FROM ledger_copy WHERE client_request_id LIKE E'a,b\"c\nd%' AND client_request_id LIKE E'%\u00e9 \r'")" \
    "awkward text survives"
assert_eq "t" "$(psql_db "$DB_URL" -c "SELECT count(*) FILTER (WHERE client_request_id = '') > 0 AND count(*) FILTER (WHERE client_request_id IS NULL) > 0 FROM ledger_copy")" \
    "empty strings and NULLs stay apart"
log "loaded back and compared in $(( $(now_ms) - t0 )) ms"

# ---- a range, oldest first ----------------------------------------------------------------------
csv "$T/range.csv" -G --data-urlencode "from=${MONTH}T00:00:10Z" --data-urlencode "to=${MONTH}T00:00:20Z"
assert_eq 5000 "$(csv_rows "$T/range.csv")" "10 s of rows, 2 ms apart"
assert_eq "$(sed -n 2p "$T/range.csv" | cut -d, -f1)" \
    "$(psql_db "$DB_URL" -c "SELECT request_id FROM ledger WHERE started_at >= '${MONTH}T00:00:10Z' ORDER BY request_id LIMIT 1")" "oldest first"
csv "$T/user.csv" -G --data-urlencode "user=user-7" --data-urlencode "to=${MONTH}T00:00:20Z"
assert_eq "$(psql_db "$DB_URL" -c "SELECT count(*) FROM ledger WHERE user_id = 'user-7' AND started_at < '${MONTH}T00:00:20Z'")" \
    "$(csv_rows "$T/user.csv")" "one user's rows"

# ---- a slow reader: backpressure keeps memory flat; leaving stops the COPY ----------------------
rm -f "$T/sample.off"; sample_rss "$T/rss_slow" &
SAMPLER=$!
csv "$T/slow.csv" --limit-rate 8M --max-time 4 || true
touch "$T/sample.off"; wait "$SAMPLER"
got=$(stat -c %s "$T/slow.csv")
growth=$(peak_growth "$BASE" "$T/rss_slow")
log "slow reader: read $((got / 1048576)) MiB of $((bytes / 1048576)) MiB, peak RSS growth $((growth / 1024)) MiB"
[ "$got" -lt "$bytes" ] || fail "the slow reader read everything; it should have been cut short"
[ "$growth" -lt "$MAX_GROWTH_KB" ] || fail "RSS grew by $growth KiB with a slow reader"
wait_until 10 "the export to notice the client left" grep -q '"msg":"ledger export".*"outcome":"client_gone"' "$TG_LOG"
wait_until 10 "the export connection to close" sql_is "$DB_URL" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tollgate-export'" 0

# ---- at most two exports at once --------------------------------------------------------------
slow_curl() { # OUT_FILE: a slow export in the background (curl itself, so that kill reaches it)
    curl -sS -o "$1" --limit-rate 100K --max-time 60 "$TG_URL/admin/api/ledger.csv" \
        -H "Authorization: Bearer $ADMIN_KEY" &
}
slow_curl "$T/s1.csv"
S1=$!; TG_PIDS+=("$S1")
slow_curl "$T/s2.csv"
S2=$!; TG_PIDS+=("$S2")
wait_until 10 "two exports running" sql_is "$DB_URL" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tollgate-export'" 2
out=$(adm GET /admin/api/ledger.csv)
expect_error "a third export" 429 null "$out"
assert_eq 10 "$(header retry-after)" "Retry-After"
kill "$S1" "$S2" 2>/dev/null || true
wait "$S1" "$S2" 2>/dev/null || true
wait_until 10 "both exports to stop" sql_is "$DB_URL" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tollgate-export'" 0
csv "$T/after.csv" -G --data-urlencode "to=${MONTH}T00:00:01Z"
assert_eq 200 "$(status)" "exports work again"
log "ok: streamed CSV export"

#!/usr/bin/env bash
# Issue 8 §1: ledger pages newest first with a keyset cursor that stays correct while rows are
# being inserted: paging through all users, and through one user, while a background load
# inserts rows both newer than every page (requests arriving) and inside the range already paged
# (long requests finishing late): no row appears twice, every row that existed before the first
# page appears exactly once, and the order is strictly (started_at, request_id) descending.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
start_fake
DB_URL=$(new_db admin_ledger)
load_uuid7 "$DB_URL"
start_admin tg
NOW=$(now_ms)
START=$((NOW - 600000))
for u in 1 2 3; do
    seed_rows "$DB_URL" "lu$u" "" m 1000 $((START + u)) 593 10 5 "$u"
done

# background load: batches of rows at random times in [START, now]; some for lu1
touch "$T/load.on"
(
    i=100
    while [ -f "$T/load.on" ]; do
        i=$((i + 1))
        psql_db "$DB_URL" -v seed="$i" -v start="$START" >/dev/null 2>>"$T/load.log" <<'SQL' || true
INSERT INTO ledger (request_id, user_id, model, route, status, prompt_tokens, completion_tokens,
                    total_tokens, count_source, started_at, finished_at, latency_ms)
SELECT tg_test_uuid7(t.ts, :seed::bigint * 1000 + k), CASE WHEN k % 3 = 0 THEN 'lu1' ELSE 'late' END,
       'm', '/v1/chat/completions', 'ok', 1, 1, 2, 'upstream', t.ts, t.ts, 1
  FROM generate_series(1, 40) AS k,
       LATERAL (SELECT timestamptz 'epoch' + (CASE WHEN k % 2 = 0
                  THEN floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint
                  ELSE :start::bigint + floor(random() * (extract(epoch FROM clock_timestamp()) * 1000 - :start::bigint))::bigint
                END + k) * interval '1 millisecond' AS ts) AS t
ON CONFLICT DO NOTHING;
SQL
        sleep 0.02
    done
) &
LOADER=$!
TG_PIDS+=("$LOADER")
wait_until 20 "the load to start" sql_ge "$DB_URL" "SELECT count(*) FROM ledger WHERE user_id = 'late'" 100

page_all() { # QUERY OUT_FILE: follows next_cursor to the end; one "started_at request_id" per line
    local q=$1 out=$2 cursor="" pg n=0
    : >"$out"
    while :; do
        pg=$(adm_ok GET "/admin/api/ledger?limit=150${q:+&$q}${cursor:+&cursor=$cursor}")
        echo "$pg" | jq -r '.data[] | "\(.started_at) \(.request_id)"' >>"$out"
        n=$((n + 1))
        [ "$(echo "$pg" | jq .has_more)" = true ] || break
        cursor=$(echo "$pg" | jq -r .next_cursor)
        [ "$(echo "$pg" | jq -r '.data[-1].request_id')" = "$cursor" ] || fail "next_cursor is the last row"
    done
    log "$q: $n pages, $(wc -l <"$out") rows"
}

check() { # NAME SNAPSHOT_FILE PAGES_FILE
    local name=$1 snap=$2 got=$3
    [ -z "$(cut -d' ' -f2 "$got" | sort | uniq -d)" ] || fail "$name: rows returned twice"
    local missing
    missing=$(comm -23 <(sort "$snap") <(cut -d' ' -f2 "$got" | sort) | wc -l)
    assert_eq 0 "$missing" "$name: rows that existed before the first page and were skipped"
    # strictly descending: sort -r -c checks the order, uniq -d above the strictness
    sort -r -c "$got" || fail "$name: not newest first"
}

psql_db "$DB_URL" -c "SELECT request_id FROM ledger WHERE started_at < '$(date -u -d @$((NOW / 1000)) +%Y-%m-%dT%H:%M:%SZ)'::timestamptz + interval '1 day'" >"$T/snap_all"
page_all "" "$T/all"
check "all users" "$T/snap_all" "$T/all"

psql_db "$DB_URL" -c "SELECT request_id FROM ledger WHERE user_id = 'lu1'" >"$T/snap_lu1"
page_all "user=lu1" "$T/lu1"
check "one user" "$T/snap_lu1" "$T/lu1"
[ -z "$(psql_db "$DB_URL" -c "SELECT request_id FROM ledger WHERE user_id <> 'lu1'" | sort | comm -12 - <(cut -d' ' -f2 "$T/lu1" | sort))" ] ||
    fail "another user's rows in lu1's pages"

FROM=$(date -u -d @$((START / 1000 + 120)) +%Y-%m-%dT%H:%M:%SZ)
TO=$(date -u -d @$((START / 1000 + 240)) +%Y-%m-%dT%H:%M:%SZ)
psql_db "$DB_URL" -c "SELECT request_id FROM ledger WHERE started_at >= '$FROM' AND started_at < '$TO'" >"$T/snap_range"
page_all "from=$FROM&to=$TO" "$T/range"
check "a range" "$T/snap_range" "$T/range"
awk -v f="${FROM%Z}" -v t="${TO%Z}" '{ s = substr($1, 1, 19); if (s < f || s >= t) bad++ } END { exit bad > 0 }' "$T/range" ||
    fail "rows outside [from, to)"
rm -f "$T/load.on"
wait "$LOADER" 2>/dev/null || true
added=$(psql_db "$DB_URL" -c "SELECT count(*) FROM ledger WHERE user_id = 'late' OR (user_id = 'lu1' AND model = 'm' AND prompt_tokens = 1)")
log "rows inserted while paging: $added"
[ "$added" -gt 200 ] || fail "the background load inserted only $added rows"
log "ok: cursor pages under concurrent inserts"

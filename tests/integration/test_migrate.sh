#!/usr/bin/env bash
# test_migrate.sh: `tollgate migrate` (tg_migrate) against a real PostgreSQL: idempotence, the
# objects it creates, refused changes, failed migrations, concurrent migrators, config errors,
# and tg_ensure_ledger_partitions.
#   usage: test_migrate.sh PATH_TO_tg_migrate     (needs TG_SERVICES_ENV and TG_SOURCE_DIR)
set -euo pipefail

MIGRATE=${1:?usage: test_migrate.sh PATH_TO_tg_migrate}
# shellcheck disable=SC1090
source "${TG_SERVICES_ENV:?}"
SCHEMA_DIR=${TG_SOURCE_DIR:?}/schema
PSQL=(psql -X -h "$TG_TEST_PGHOST" -p "$TG_TEST_PGPORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
WORK=$(mktemp -d)
DBS=()

cleanup() {
    for db in "${DBS[@]}"; do
        "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }

# new_db NAME: creates a fresh database, sets DB and URL.
new_db() {
    DB="tg_mig_$$_$1"
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE \"$DB\"" >/dev/null
    DBS+=("$DB")
    URL="postgresql://postgres@$TG_TEST_PGHOST:$TG_TEST_PGPORT/$DB"
}
q() { "${PSQL[@]}" -d "$DB" -c "$1"; }
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"; }

# run_migrate OUT_PREFIX [args...]: runs tg_migrate against $URL, sets RC.
run_migrate() {
    local out=$1; shift
    set +e
    DATABASE_URL=$URL "$MIGRATE" "$@" >"$out.out" 2>"$out.err"
    RC=$?
    set -e
}

n_files=$(find "$SCHEMA_DIR" -maxdepth 1 -name '[0-9]*_*.sql' | wc -l)
[ "$n_files" -ge 4 ] || fail "expected at least 4 migrations in $SCHEMA_DIR, found $n_files"

# --- 1. twice on a new database ----------------------------------------------------------------
new_db main
run_migrate "$WORK/first" --schema-dir "$SCHEMA_DIR"
[ $RC = 0 ] || fail "first run exit $RC: $(cat "$WORK/first.err")"
expect_eq "$(grep -c '^applied ' "$WORK/first.out")" "$n_files" "first run applies every migration"
run_migrate "$WORK/second" --schema-dir "$SCHEMA_DIR"
[ $RC = 0 ] || fail "second run exit $RC: $(cat "$WORK/second.err")"
expect_eq "$(grep -c '^applied ' "$WORK/second.out" || true)" "0" "second run applies nothing"
expect_eq "$(grep -c '^skipped ' "$WORK/second.out")" "$n_files" "second run skips every migration"
# Without --schema-dir: the compiled-in default is this source tree's schema/.
run_migrate "$WORK/third"
[ $RC = 0 ] || fail "default schema dir: exit $RC: $(cat "$WORK/third.err")"
expect_eq "$(grep -c '^skipped ' "$WORK/third.out")" "$n_files" "default schema dir is schema/"
pass "migrate twice: $n_files applied, then all skipped"

# schema_migrations records version, file name and the file's SHA-256.
want=$(cd "$SCHEMA_DIR" && for f in [0-9]*_*.sql; do
    printf '%d|%s|%s\n' "$((10#${f%%_*}))" "$f" "$(sha256sum "$f" | cut -d' ' -f1)"; done | sort -t'|' -k1,1n)
got=$(q "SELECT version || '|' || name || '|' || checksum FROM schema_migrations ORDER BY version")
expect_eq "$got" "$want" "schema_migrations rows"
pass "schema_migrations holds version, name and SHA-256 of each file"

# --- 2. every table, view and function --------------------------------------------------------
for t in schema_migrations users teams quotas api_keys audit_log model_prices webhook_outbox; do
    expect_eq "$(q "SELECT relkind FROM pg_class WHERE oid = to_regclass('public.$t')")" "r" "table $t"
done
expect_eq "$(q "SELECT relkind FROM pg_class WHERE oid = to_regclass('public.ledger')")" "p" \
    "ledger is a partitioned table"
for v in usage_daily usage_monthly; do
    expect_eq "$(q "SELECT relkind FROM pg_class WHERE oid = to_regclass('public.$v')")" "v" "view $v"
done
for f in 'tg_uuid7_time(uuid)' 'tg_uuid7_min(timestamptz)' \
    'tg_ensure_ledger_partitions(timestamptz,integer)' \
    'tg_ledger_cost(text,timestamptz,bigint,bigint,bigint)' 'tg_is_valid_id(text)'; do
    expect_eq "$(q "SELECT to_regprocedure('$f') IS NOT NULL")" "t" "function $f"
done

# The ledger exactly as agreed in notes/ledger-ddl.md (SPEC §6 names).
got=$(q "SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' ORDER BY ordinal_position)
           FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'ledger'")
want="request_id uuid NO, user_id text NO, team_id text YES, model text NO, route text NO, status text NO, \
prompt_tokens bigint NO, completion_tokens bigint NO, cached_tokens bigint NO, reasoning_tokens bigint NO, \
total_tokens bigint NO, cost_usd numeric YES, count_source text NO, upstream_status integer YES, \
started_at timestamp with time zone NO, finished_at timestamp with time zone NO, ttfb_ms integer YES, \
latency_ms integer NO, upstream_call_id text YES, client_request_id text YES"
expect_eq "$got" "$want" "ledger columns"
expect_eq "$(q "SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM pg_constraint c,
                  unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = 'ledger'::regclass AND a.attnum = k.attnum
                 WHERE c.conrelid = 'ledger'::regclass AND c.contype = 'p'")" \
    "request_id,started_at" "ledger primary key"
for v in usage_daily usage_monthly; do
    period=day
    [ $v = usage_monthly ] && period=month
    got=$(q "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
               FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '$v'")
    want="$period date, user_id text, team_id text, model text, requests bigint, prompt_tokens bigint, \
completion_tokens bigint, cached_tokens bigint, reasoning_tokens bigint, total_tokens bigint, \
cost_usd numeric, unpriced_requests bigint"
    expect_eq "$got" "$want" "$v columns"
done
got=$(q "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name = 'model_prices'")
expect_eq "$got" "model,input_usd_per_mtok,cached_input_usd_per_mtok,output_usd_per_mtok,effective_from,created_at" \
    "model_prices columns"
pass "tables, views, functions and the agreed ledger shape"

# --- 3. partitions: this month and 3 ahead (UTC), plus the default ------------------------------
n_parts=$(q "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'ledger'::regclass AND c.relname ~ '^ledger_[0-9]{4}_[0-9]{2}$'")
[ "$n_parts" -ge 4 ] || fail "expected at least 4 monthly ledger partitions, found $n_parts"
missing=$(q "SELECT string_agg(n, ' ') FROM (
               SELECT 'ledger_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i), 'YYYY_MM') AS n
                 FROM generate_series(0, 3) i) x
              WHERE NOT EXISTS (SELECT 1 FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid
                                 WHERE inhparent = 'ledger'::regclass AND c.relname = x.n)")
expect_eq "$missing" "" "partitions for this month and the next 3"
expect_eq "$(q "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = 'ledger_default'")" \
    "DEFAULT" "default partition"
# Bounds are UTC midnights whatever the session's time zone.
bound=$(q "SET TIME ZONE 'UTC'; SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c
            WHERE c.relname = 'ledger_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')")
case "$bound" in
"FOR VALUES FROM ('"*"-01 00:00:00+00') TO ('"*"-01 00:00:00+00')") ;;
*) fail "partition bound not at UTC month starts: $bound" ;;
esac
# Partitions inherit the indexes of the partitioned table.
expect_eq "$(q "SELECT count(*) FROM pg_indexes WHERE tablename = 'ledger_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')")" \
    "4" "indexes on this month's partition (pkey, user, team, brin)"
pass "$n_parts monthly partitions (this month + 3 ahead, UTC bounds) and ledger_default"

# --- 4. tg_ensure_ledger_partitions: idempotent, concurrent, moves rows out of the default -----
expect_eq "$(q "SELECT tg_ensure_ledger_partitions(now(), 3)")" "0" "ensure again creates nothing"
expect_eq "$(q "SELECT tg_ensure_ledger_partitions('2031-11-30T20:00:00-05:00', 2)")" "3" \
    "ensure from 2031-11-30 20:00 in New York (December in UTC)"
expect_eq "$(q "SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'ledger_203%'")" \
    "ledger_2031_12 ledger_2032_01 ledger_2032_02" "the month of 'from' is taken in UTC"
pids=()
for i in 1 2 3 4 5 6; do
    "${PSQL[@]}" -d "$DB" -c "SELECT tg_ensure_ledger_partitions('2040-01-01Z', 23)" >"$WORK/ens$i.out" 2>"$WORK/ens$i.err" &
    pids+=($!)
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || fail "concurrent ensure $((i + 1)) failed: $(cat "$WORK/ens$((i + 1)).err")"
done
total=$(awk '{ s += $1 } END { print s }' "$WORK"/ens*.out)
expect_eq "$total" "24" "6 concurrent ensures create 24 partitions between them"
expect_eq "$(q "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname ~ '^ledger_204[01]_[0-9]+$'")" "24" "2040-2041 partitions"
q "SELECT tg_ensure_ledger_partitions(now(), -1)" >/dev/null 2>&1 && fail "negative months_ahead accepted"
pass "tg_ensure_ledger_partitions: idempotent, UTC months, 6 concurrent callers"

# --- 5. a changed migration is refused ---------------------------------------------------------
mkdir "$WORK/changed"
cp "$SCHEMA_DIR"/*.sql "$WORK/changed/"
first=$(cd "$WORK/changed" && ls [0-9]*_*.sql | head -n 1)
echo "-- an edit after the fact" >>"$WORK/changed/$first"
before=$(q "SELECT string_agg(version || checksum, ',' ORDER BY version) FROM schema_migrations")
run_migrate "$WORK/changed" --schema-dir "$WORK/changed"
expect_eq "$RC" "1" "changed checksum exit status"
grep -q "$first changed after it was applied" "$WORK/changed.err" || fail "message: $(cat "$WORK/changed.err")"
expect_eq "$(wc -l <"$WORK/changed.err")" "1" "one error line"
expect_eq "$(q "SELECT string_agg(version || checksum, ',' ORDER BY version) FROM schema_migrations")" "$before" \
    "schema_migrations untouched"
pass "a migration changed after it was applied is refused ($(cat "$WORK/changed.err"))"

# --- 6. a new migration is applied alone; a failing one leaves nothing behind -------------------
mkdir "$WORK/more"
cp "$SCHEMA_DIR"/*.sql "$WORK/more/"
printf 'CREATE TABLE extra_a (a int);\nINSERT INTO extra_a VALUES (1);\n' >"$WORK/more/900_extra.sql"
run_migrate "$WORK/more" --schema-dir "$WORK/more"
[ $RC = 0 ] || fail "new migration: exit $RC $(cat "$WORK/more.err")"
expect_eq "$(grep '^applied ' "$WORK/more.out" | cut -d' ' -f2)" "900_extra.sql" "only the new migration applied"
expect_eq "$(q "SELECT count(*) FROM extra_a")" "1" "new migration ran"

printf 'CREATE TABLE broken_a (a int);\n\nSELECT no_such_column\n  FROM broken_a;\n' >"$WORK/more/901_broken.sql"
run_migrate "$WORK/broken" --schema-dir "$WORK/more"
expect_eq "$RC" "1" "failing migration exit status"
grep -q '901_broken.sql:3: column "no_such_column" does not exist' "$WORK/broken.err" ||
    fail "failing migration message: $(cat "$WORK/broken.err")"
expect_eq "$(q "SELECT to_regclass('broken_a') IS NULL")" "t" "failed migration rolled back"
expect_eq "$(q "SELECT count(*) FROM schema_migrations WHERE version = 901")" "0" "failed migration not recorded"
rm "$WORK/more/901_broken.sql"

printf 'CREATE TABLE late_a (a int);\n' >"$WORK/more/850_late.sql"
run_migrate "$WORK/late" --schema-dir "$WORK/more"
expect_eq "$RC" "1" "out-of-order migration exit status"
grep -q '850_late.sql is not applied but migration 900 already is' "$WORK/late.err" ||
    fail "out-of-order message: $(cat "$WORK/late.err")"
expect_eq "$(q "SELECT to_regclass('late_a') IS NULL")" "t" "out-of-order migration not applied"
rm "$WORK/more/850_late.sql"

printf 'CREATE TABLE commits_a (a int);\nCOMMIT;\n' >"$WORK/more/902_commits.sql"
run_migrate "$WORK/commits" --schema-dir "$WORK/more"
expect_eq "$RC" "1" "migration with COMMIT exit status"
grep -q "902_commits.sql: ended the migration's transaction" "$WORK/commits.err" ||
    fail "COMMIT message: $(cat "$WORK/commits.err")"
expect_eq "$(q "SELECT count(*) FROM schema_migrations WHERE version = 902")" "0" "COMMIT migration not recorded"
pass "new migration applied alone; failing, out-of-order and COMMIT-ing migrations refused"

# --- 7. concurrent migrators on a fresh database -----------------------------------------------
new_db concurrent
pids=()
for i in 1 2 3 4; do
    DATABASE_URL=$URL "$MIGRATE" --schema-dir "$SCHEMA_DIR" >"$WORK/conc$i.out" 2>"$WORK/conc$i.err" &
    pids+=($!)
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || fail "concurrent migrator $((i + 1)) failed: $(cat "$WORK/conc$((i + 1)).err")"
done
for i in 1 2 3 4; do
    [ ! -s "$WORK/conc$i.err" ] || fail "concurrent migrator $i wrote errors: $(cat "$WORK/conc$i.err")"
done
expect_eq "$(cat "$WORK"/conc*.out | grep -c '^applied ')" "$n_files" "each migration applied once in all"
expect_eq "$(cat "$WORK"/conc*.out | grep -c '^skipped ')" "$((3 * n_files))" "the others skipped"
expect_eq "$(q "SELECT count(*) || ' ' || count(DISTINCT version) FROM schema_migrations")" "$n_files $n_files" \
    "schema_migrations after concurrent runs"
pass "4 concurrent migrators: no error, each migration applied once"

# --- 8. configuration and connection errors ----------------------------------------------------
check_error() { # want_rc pattern description command...
    local want=$1 pattern=$2 what=$3; shift 3
    set +e
    "$@" >"$WORK/err.out" 2>"$WORK/err.err"
    local rc=$?
    set -e
    expect_eq "$rc" "$want" "$what: exit status"
    expect_eq "$(wc -l <"$WORK/err.err")" "1" "$what: one line on stderr ($(cat "$WORK/err.err"))"
    grep -q -- "$pattern" "$WORK/err.err" || fail "$what: '$(cat "$WORK/err.err")' lacks '$pattern'"
}
check_error 2 'DATABASE_URL: required' "DATABASE_URL unset" env -u DATABASE_URL "$MIGRATE"
check_error 2 'DATABASE_URL: required' "DATABASE_URL empty" env DATABASE_URL= "$MIGRATE"
check_error 2 'DATABASE_URL: invalid' "DATABASE_URL malformed" env DATABASE_URL='host=x nosuchoption=1' "$MIGRATE"
check_error 2 'schema directory /nonexistent' "missing schema dir" env DATABASE_URL="$URL" "$MIGRATE" --schema-dir /nonexistent
mkdir "$WORK/badname"
cp "$SCHEMA_DIR"/*.sql "$WORK/badname/"
touch "$WORK/badname/fix.sql"
check_error 2 'fix.sql: a migration file is named' "badly named file" env DATABASE_URL="$URL" "$MIGRATE" --schema-dir "$WORK/badname"
mkdir "$WORK/dup"
cp "$SCHEMA_DIR"/*.sql "$WORK/dup/"
cp "$WORK/dup/$first" "$WORK/dup/${first%%_*}_again.sql"
check_error 2 'have the same number' "duplicate number" env DATABASE_URL="$URL" "$MIGRATE" --schema-dir "$WORK/dup"
check_error 2 "unknown argument '--frobnicate'" "unknown option" env DATABASE_URL="$URL" "$MIGRATE" --frobnicate
check_error 2 '--schema-dir needs a directory' "--schema-dir without value" env DATABASE_URL="$URL" "$MIGRATE" --schema-dir
closed_port=1
check_error 1 'cannot connect to PostgreSQL' "server unreachable" \
    env DATABASE_URL="postgresql://postgres@127.0.0.1:$closed_port/x?connect_timeout=5" "$MIGRATE"
check_error 1 'cannot connect to PostgreSQL' "database missing" \
    env DATABASE_URL="postgresql://postgres@$TG_TEST_PGHOST:$TG_TEST_PGPORT/tg_no_such_db_$$" "$MIGRATE"
DATABASE_URL=$URL "$MIGRATE" --help | grep -q 'usage: tollgate migrate' || fail "--help"
pass "configuration errors exit 2, database errors exit 1, one line each"

echo "test_migrate: all passed"

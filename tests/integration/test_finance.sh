#!/usr/bin/env bash
# test_finance.sh: runs EVERY fenced code block of docs/finance.md, in order, against a seeded
# tollgate database (```sql) or a stand-in LiteLLM database (```sql litellm), and compares each
# CSV the blocks write with tests/fixtures/finance/expected/ (figures computed by
# make_expected.py without PostgreSQL; TG_FINANCE_OUT=DIR keeps a copy). Any other fence, a block that writes no CSV, a missing
# or an unexpected CSV fails the test, so the doc and the test cannot drift apart.
#   usage: test_finance.sh PATH_TO_tg_migrate     (needs TG_SERVICES_ENV and TG_SOURCE_DIR)
set -euo pipefail

MIGRATE=${1:?usage: test_finance.sh PATH_TO_tg_migrate}
# shellcheck disable=SC1090
source "${TG_SERVICES_ENV:?}"
SRC=${TG_SOURCE_DIR:?}
FIX=$SRC/tests/fixtures/finance
DOC=${TG_FINANCE_DOC:-$SRC/docs/finance.md}
PSQL=(psql -X -h "$TG_TEST_PGHOST" -p "$TG_TEST_PGPORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
DB="tg_fin_$$"
LDB="tg_fin_$$_litellm"
WORK=$(mktemp -d)

cleanup() {
    for db in "$DB" "$LDB"; do
        "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- the seeded databases ----------------------------------------------------------------------
"${PSQL[@]}" -d postgres -c "CREATE DATABASE \"$DB\"" -c "CREATE DATABASE \"$LDB\""
DATABASE_URL="postgresql://postgres@$TG_TEST_PGHOST:$TG_TEST_PGPORT/$DB" "$MIGRATE" \
    --schema-dir "$SRC/schema" >/dev/null
"${PSQL[@]}" -d "$DB" -o /dev/null -f "$FIX/uuid7.sql" -f "$FIX/seed.sql"
"${PSQL[@]}" -d "$LDB" -f "$FIX/litellm_spendlogs.sql"
"${PSQL[@]}" -d "$DB" -f "$FIX/litellm_rows.sql" |
    "${PSQL[@]}" -d "$LDB" -c 'COPY "LiteLLM_SpendLogs" FROM STDIN'
rows=$("${PSQL[@]}" -d "$DB" -c "SELECT count(*) FROM ledger")
[ "$rows" -ge 300 ] || fail "seed: only $rows ledger rows"
echo "seeded $rows ledger rows, $("${PSQL[@]}" -d "$LDB" -c 'SELECT count(*) FROM "LiteLLM_SpendLogs"') LiteLLM rows"

# --- the blocks of the doc ---------------------------------------------------------------------
mkdir "$WORK/blocks" "$WORK/out"
awk -v dir="$WORK/blocks" '
    /^```/ {
        if (!inside) {
            lang = substr($0, 4); sub(/[ \t]+$/, "", lang)
            kind = lang == "sql" ? "tollgate" : lang == "sql litellm" ? "litellm" : "unknown"
            n++; file = sprintf("%s/%02d.%s", dir, n, kind); printf "" > file; inside = 1
        } else {
            close(file); inside = 0
        }
        next
    }
    inside { print > file }
    END { if (inside) { print "unterminated code block" > "/dev/stderr"; exit 1 } }
' "$DOC"
n_blocks=$(find "$WORK/blocks" -type f | wc -l)
[ "$n_blocks" -ge 8 ] || fail "expected at least 8 code blocks in $DOC, found $n_blocks"
if ls "$WORK/blocks"/*.unknown >/dev/null 2>&1; then
    fail "$DOC has code blocks that are neither \`\`\`sql nor \`\`\`sql litellm (the test runs every block): $(ls "$WORK/blocks"/*.unknown)"
fi

for block in "$WORK"/blocks/*; do
    case "$block" in
    *.tollgate) db=$DB ;;
    *.litellm) db=$LDB ;;
    esac
    before=$(find "$WORK/out" -type f | wc -l)
    (cd "$WORK/out" && "${PSQL[@]}" -d "$db" -o /dev/null -f "$block") 2>"$WORK/block.err" ||
        fail "block $(basename "$block") failed: $(cat "$WORK/block.err")"$'\n'"$(cat "$block")"
    [ ! -s "$WORK/block.err" ] || fail "block $(basename "$block") wrote to stderr: $(cat "$WORK/block.err")"
    after=$(find "$WORK/out" -type f | wc -l)
    [ "$after" -gt "$before" ] || fail "block $(basename "$block") exported nothing:"$'\n'"$(cat "$block")"
done
echo "ran $n_blocks blocks of $(basename "$DOC")"
if [ -n "${TG_FINANCE_OUT:-}" ]; then # to look at what the doc exports: TG_FINANCE_OUT=DIR
    mkdir -p "$TG_FINANCE_OUT" && cp "$WORK"/out/* "$TG_FINANCE_OUT/"
fi

# --- their output against the independently computed figures -----------------------------------
got=$(cd "$WORK/out" && ls | sort)
want=$(cd "$FIX/expected" && ls | sort)
[ "$got" = "$want" ] || fail "exported files differ from expected/:"$'\n'"$(diff <(echo "$want") <(echo "$got"))"
for f in $want; do
    diff -u "$FIX/expected/$f" "$WORK/out/$f" >"$WORK/diff" || fail "$f differs from expected:"$'\n'"$(head -n 40 "$WORK/diff")"
    echo "ok - $f ($(($(wc -l <"$WORK/out/$f") - 1)) rows)"
done
echo "test_finance: all passed"

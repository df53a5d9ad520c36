#!/usr/bin/env bash
# test_cost.sh: cost_usd, price CHECKs, partitions, keys and account tables on a freshly migrated
# database; the assertions are in test_cost.sql (each failure raises and names itself).
#   usage: test_cost.sh PATH_TO_tg_migrate     (needs TG_SERVICES_ENV and TG_SOURCE_DIR)
set -euo pipefail

MIGRATE=${1:?usage: test_cost.sh PATH_TO_tg_migrate}
# shellcheck disable=SC1090
source "${TG_SERVICES_ENV:?}"
HERE=$(cd "$(dirname "$0")" && pwd)
PSQL=(psql -X -h "$TG_TEST_PGHOST" -p "$TG_TEST_PGPORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
DB="tg_cost_$$"

cleanup() { "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup EXIT

"${PSQL[@]}" -d postgres -c "CREATE DATABASE \"$DB\""
DATABASE_URL="postgresql://postgres@$TG_TEST_PGHOST:$TG_TEST_PGPORT/$DB" "$MIGRATE" \
    --schema-dir "${TG_SOURCE_DIR:?}/schema" >/dev/null
"${PSQL[@]}" -d "$DB" -f "$TG_SOURCE_DIR/tests/fixtures/finance/uuid7.sql"
"${PSQL[@]}" -d "$DB" -o /dev/null -f "$HERE/test_cost.sql"
echo "test_cost: all passed"

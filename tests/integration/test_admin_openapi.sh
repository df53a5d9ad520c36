#!/usr/bin/env bash
# Issue 8 §7: the OpenAPI 3.1 document served at /admin/api/openapi.json is the file
# proxy/src/admin/openapi.json; every documented operation answers with its documented statuses
# and response shapes, and every documented status is produced (tests/node/admin_openapi.mjs).
# That every route of the server is documented is checked against the C route table by the unit
# test test_admin_routes.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_admin.sh"
start_fake
DB_URL=$(new_db admin_openapi)
load_uuid7 "$DB_URL"
start_admin tg
assert_eq 200 "$(chat_user oa-user)" "oa-user seen"
psql_db "$DB_URL" -c "INSERT INTO users (id, team_id) VALUES ('oa-team-user', 'oa-team')" >/dev/null
# enough rows (about 15 MiB of CSV) that an export nobody reads stays open
seed_rows "$DB_URL" oa-user oa-team m-oa 60000 $(($(now_ms) - 3600000)) 50 120 80 1
seed_rows "$DB_URL" oa-team-user oa-team m-oa 10 $(($(now_ms) - 600000)) 1000 10 5 2
BASE=$TG_URL
DB_URL="postgresql://postgres@127.0.0.1:$(free_port)/nowhere" start_admin nodb
NODB=$TG_URL
node "$TG_SOURCE_DIR/tests/node/admin_openapi.mjs" "$TG_SOURCE_DIR/proxy/src/admin/openapi.json" \
    "$BASE" "$NODB" "$ADMIN_KEY" "$SERVICE_KEY" >"$T/openapi.out" || fail "$(cat "$T/openapi.out")"
log "$(jq -c '{operations, checked}' "$T/openapi.out")"
log "ok: the admin API answers as documented"

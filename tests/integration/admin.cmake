# Issue 8: the admin API (SPEC §7) against real PostgreSQL and Redis (tests/integration/lib_admin.sh;
# node helpers tests/node/admin_*.mjs). The route table <-> OpenAPI check is the unit test
# test_admin_routes (tests/unit/admin.cmake).
tg_integration_test(admin_auth COMMAND ${TG_INTEG_DIR}/test_admin_auth.sh TIMEOUT 300)
tg_integration_test(admin_validation COMMAND ${TG_INTEG_DIR}/test_admin_validation.sh TIMEOUT 300)
tg_integration_test(admin_users COMMAND ${TG_INTEG_DIR}/test_admin_users.sh TIMEOUT 300)
tg_integration_test(admin_reports COMMAND ${TG_INTEG_DIR}/test_admin_reports.sh TIMEOUT 300)
tg_integration_test(admin_teams COMMAND ${TG_INTEG_DIR}/test_admin_teams.sh TIMEOUT 300)
tg_integration_test(admin_ledger COMMAND ${TG_INTEG_DIR}/test_admin_ledger.sh TIMEOUT 300)
tg_integration_test(admin_multi COMMAND ${TG_INTEG_DIR}/test_admin_multi.sh TIMEOUT 300)
tg_integration_test(admin_events COMMAND ${TG_INTEG_DIR}/test_admin_events.sh TIMEOUT 300)
# Finished requests on the live feed (tg_request_finish -> tg_admin_event_request): no skip
# code, a regression fails.
tg_integration_test(admin_events_requests COMMAND ${TG_INTEG_DIR}/test_admin_events_requests.sh
                    TIMEOUT 120)
tg_integration_test(admin_openapi COMMAND ${TG_INTEG_DIR}/test_admin_openapi.sh TIMEOUT 300)
tg_integration_test(admin_docs COMMAND ${TG_INTEG_DIR}/test_admin_docs.sh TIMEOUT 300)
tg_integration_test(admin_dashboard COMMAND ${TG_INTEG_DIR}/test_admin_dashboard.sh TIMEOUT 120)
# One million rows exported and loaded back: heavy on the shared PostgreSQL, measures RSS.
tg_integration_test(admin_csv COMMAND ${TG_INTEG_DIR}/test_admin_csv.sh TIMEOUT 600 SERIAL)

# The admin dashboard (dashboard-static/): its SSE parser under Node (every split point, random
# chunkings) and the whole dashboard in Debian's chromium driven by playwright-core against a
# real tollgate (needs `apt-get install chromium` and tests/node/install.sh).
add_test(NAME dashboard_sse COMMAND node ${CMAKE_SOURCE_DIR}/tests/node/dashboard_sse.mjs)
set_tests_properties(dashboard_sse PROPERTIES LABELS unit TIMEOUT 60)
tg_integration_test(dashboard_browser COMMAND ${TG_INTEG_DIR}/test_dashboard_browser.sh TIMEOUT 300)

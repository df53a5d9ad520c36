# Issue 3: forwarding and streamed counting, through real sockets against the fake upstream.
tg_integration_test(proxy_routes COMMAND ${TG_INTEG_DIR}/test_proxy_routes.sh TIMEOUT 300)
tg_integration_test(proxy_stream COMMAND ${TG_INTEG_DIR}/test_proxy_stream.sh TIMEOUT 300)
tg_integration_test(proxy_conn COMMAND ${TG_INTEG_DIR}/test_proxy_conn.sh TIMEOUT 300)
tg_integration_test(sdk_e2e COMMAND ${TG_INTEG_DIR}/test_sdk_e2e.sh TIMEOUT 300)
tg_integration_test(proxy_edges COMMAND ${TG_INTEG_DIR}/test_proxy_edges.sh TIMEOUT 300)
tg_integration_test(proxy_timeouts COMMAND ${TG_INTEG_DIR}/test_proxy_timeouts.sh TIMEOUT 300)

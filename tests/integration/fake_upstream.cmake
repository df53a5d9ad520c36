# The fake upstream itself: wire shapes, knobs, keep-alive, record file and TLS (curl + jq).
tg_integration_test(fake_upstream COMMAND ${CMAKE_CURRENT_LIST_DIR}/test_fake_upstream.sh
                    TIMEOUT 300)

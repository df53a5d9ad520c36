# Issue 9 §3-§4: the gateway's own token figures equal what `tollgate tokens` prints.
tg_integration_test(tokens_gateway COMMAND ${TG_INTEG_DIR}/test_tokens_gateway.sh TIMEOUT 300)

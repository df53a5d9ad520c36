# Issue 2: configuration, command line, graceful stop, logs.
tg_integration_test(cli COMMAND ${TG_INTEG_DIR}/test_cli.sh TIMEOUT 300)
tg_integration_test(shutdown COMMAND ${TG_INTEG_DIR}/test_shutdown.sh TIMEOUT 300)

# Issue 2: configuration, command line, graceful stop, logs, `make run` (scripts/run.sh),
# worker threads and listeners, the harness teardown when its caller dies.
tg_integration_test(cli COMMAND ${TG_INTEG_DIR}/test_cli.sh TIMEOUT 300)
tg_integration_test(shutdown COMMAND ${TG_INTEG_DIR}/test_shutdown.sh TIMEOUT 300)
tg_integration_test(make_run COMMAND ${TG_INTEG_DIR}/test_make_run.sh TIMEOUT 300)
tg_integration_test(workers COMMAND ${TG_INTEG_DIR}/test_workers.sh TIMEOUT 300)
tg_integration_test(services_teardown COMMAND ${TG_INTEG_DIR}/test_services_teardown.sh TIMEOUT 300)

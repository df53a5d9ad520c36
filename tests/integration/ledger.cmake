# Ledger writer integration tests: real PostgreSQL, the real schema (tg_migrate, or psql over
# schema/*.sql when tg_migrate is not built), the ledger_driver program.
add_executable(ledger_driver ${CMAKE_CURRENT_SOURCE_DIR}/ledger_driver.c)
target_link_libraries(ledger_driver PRIVATE tg_ledger)

set(TG_LEDGER_TEST_ARGS $<TARGET_FILE:ledger_driver>)
if(TARGET tg_migrate)
  list(APPEND TG_LEDGER_TEST_ARGS $<TARGET_FILE:tg_migrate>)
endif()
foreach(t exactly_once cost partitions torn_spool rejected spool_fsync)
  tg_integration_test(ledger_${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_ledger_${t}.sh
                      ${TG_LEDGER_TEST_ARGS} TIMEOUT 300)
endforeach()
# These two start and stop their own PostgreSQL cluster.
foreach(t pg_outage kill9 hung_pg)
  tg_integration_test(ledger_${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_ledger_${t}.sh
                      ${TG_LEDGER_TEST_ARGS} TIMEOUT 600)
endforeach()

# Schema, migrations and the finance interface against a real PostgreSQL (each test makes its own databases).
if(TARGET tg_migrate)
  tg_integration_test(schema_migrate COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_migrate.sh
                      $<TARGET_FILE:tg_migrate> TIMEOUT 180)
  tg_integration_test(schema_cost COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_cost.sh
                      $<TARGET_FILE:tg_migrate> TIMEOUT 120)
  tg_integration_test(schema_finance COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_finance.sh
                      $<TARGET_FILE:tg_migrate> TIMEOUT 180)
endif()

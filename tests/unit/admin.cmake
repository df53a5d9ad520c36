# Issue 8: the admin API's route table, input checks and OpenAPI document (pure parts).
tg_unit_test(test_admin_routes
  SOURCES test_admin_routes.c ${CMAKE_SOURCE_DIR}/proxy/src/admin/admin_routes.c
          ${CMAKE_SOURCE_DIR}/proxy/src/admin/admin_openapi_doc.c
  LIBS tg_base)
if(TARGET test_admin_routes)
  target_compile_definitions(test_admin_routes PRIVATE
                             TG_OPENAPI_FILE="${CMAKE_SOURCE_DIR}/proxy/src/admin/openapi.json")
endif()

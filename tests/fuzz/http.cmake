tg_fuzz_target(http SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_http.c LIBS tg_http_parse)

# Sources compiled in (not linked from tg_meter) for libFuzzer coverage; see sse.cmake.
tg_fuzz_target(usage SOURCES fuzz_usage.c
               ${CMAKE_SOURCE_DIR}/proxy/src/meter/usage.c
               ${CMAKE_SOURCE_DIR}/proxy/src/meter/body_scan.c
               ${CMAKE_SOURCE_DIR}/proxy/src/core/json_scan.c
               ${CMAKE_SOURCE_DIR}/proxy/src/core/buf.c)

# The meter and JSON sources are compiled into the target itself (not linked from tg_meter /
# tg_base) so that with -DFUZZ=ON they get libFuzzer's coverage instrumentation.
set(TG_FUZZ_METER_SRC ${CMAKE_SOURCE_DIR}/proxy/src/meter/sse.c
    ${CMAKE_SOURCE_DIR}/proxy/src/meter/usage.c ${CMAKE_SOURCE_DIR}/proxy/src/meter/body_scan.c
    ${CMAKE_SOURCE_DIR}/proxy/src/core/json_scan.c ${CMAKE_SOURCE_DIR}/proxy/src/core/buf.c)
tg_fuzz_target(sse SOURCES fuzz_sse.c ${TG_FUZZ_METER_SRC})

# Sources compiled in (not linked from tg_meter) for libFuzzer coverage; see sse.cmake.
tg_fuzz_target(reply_text SOURCES fuzz_reply_text.c
               ${CMAKE_SOURCE_DIR}/proxy/src/meter/reply_text.c)

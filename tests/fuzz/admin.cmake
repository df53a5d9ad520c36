# Issue 8: the admin API's byte-in parsers (route matching with %-decoding, query strings,
# integers, prices, UUIDs, text checks). admin_routes.c is compiled into the target so that with
# -DFUZZ=ON it gets libFuzzer's coverage instrumentation.
tg_fuzz_target(admin SOURCES fuzz_admin.c ${CMAKE_SOURCE_DIR}/proxy/src/admin/admin_routes.c)

# Quota engine against real redis-server processes that each test starts on its own free ports
# (the tests kill, pause and restart them, so the shared services Redis is left alone).
foreach(t test_redis_async test_quota_lua)
  add_executable(${t} ${t}.c)
  target_link_libraries(${t} PRIVATE tg_quota PkgConfig::CMOCKA PkgConfig::OPENSSL)
  string(REPLACE "test_" "" short ${t})
  tg_integration_test(${short} COMMAND $<TARGET_FILE:${t}> TIMEOUT 300)
endforeach()

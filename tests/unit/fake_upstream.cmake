# The fake upstream's pure HTTP parsing (request heads, chunked bodies).
tg_unit_test(test_fake_http SOURCES ${CMAKE_SOURCE_DIR}/tests/fake_upstream/test_fake_http.c
             ${CMAKE_SOURCE_DIR}/tests/fake_upstream/fake_http.c)
if(TARGET test_fake_http)
  target_include_directories(test_fake_http PRIVATE ${CMAKE_SOURCE_DIR}/tests/fake_upstream)
endif()

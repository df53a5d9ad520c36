# Tokenizer tests: cmocka unit tests, and the reference comparison against tiktoken@1.0.22
# (node; tests/tokenizer/run_reference.sh runs `npm ci` there when node_modules is missing).
tg_unit_test(test_tokenizer SOURCES test_tokenizer.c LIBS tg_tokenizer)

add_executable(test_tokenizer_ref test_tokenizer_ref.c)
target_link_libraries(test_tokenizer_ref PRIVATE tg_tokenizer)
find_program(TG_NODE node)
find_program(TG_NPM npm)
if(TG_NODE AND TG_NPM)
  add_test(NAME tokenizer.reference
           COMMAND ${CMAKE_SOURCE_DIR}/tests/tokenizer/run_reference.sh
                   $<TARGET_FILE:test_tokenizer_ref> $<TARGET_FILE:tg_tokens>)
  set_tests_properties(tokenizer.reference PROPERTIES LABELS "unit;reference" TIMEOUT 900)
else()
  message(WARNING "node/npm not found: the tokenizer reference comparison is not registered")
endif()

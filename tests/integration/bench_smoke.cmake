# Smoke test of the benchmark tools: bench/run.sh in "smoke" mode runs every part (nginx, wrk,
# loadgen, streams, the metered tollgate with its own PostgreSQL and Redis) for about a second
# each with tiny parameters and checks that each produced figures. No performance assertions.
# The bench targets (loadgen, streams) come from bench/CMakeLists.txt, which the top-level
# CMakeLists.txt adds after tests/; generator expressions resolve them at generate time.
tg_integration_test(bench_smoke
  COMMAND env LOADGEN_BIN=$<TARGET_FILE:loadgen> STREAMS_BIN=$<TARGET_FILE:streams>
          ${TG_INTEG_DIR}/test_bench_smoke.sh
  TIMEOUT 300)

# Issue 6 items 1-2 end to end: real HTTP clients → tollgate → an upstream, the ledger in
# PostgreSQL (tests/integration/test_ledger_e2e_*.sh, helpers in lib_ledger.sh, node clients
# in tests/node/ledger_*.mjs).
foreach(t columns last_byte torn)
  tg_integration_test(ledger_e2e_${t} COMMAND ${TG_INTEG_DIR}/test_ledger_e2e_${t}.sh TIMEOUT 300)
endforeach()
# These stop and start PostgreSQL (their own cluster) under a steady load.
foreach(t outage kill9)
  tg_integration_test(ledger_e2e_${t} COMMAND ${TG_INTEG_DIR}/test_ledger_e2e_${t}.sh TIMEOUT 600)
endforeach()

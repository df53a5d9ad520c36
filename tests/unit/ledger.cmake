tg_unit_test(test_ledger_row SOURCES test_ledger_row.c LIBS tg_ledger_fmt)
tg_unit_test(test_ring SOURCES test_ring.c LIBS tg_ledger)
tg_unit_test(test_spool SOURCES test_spool.c LIBS tg_ledger)

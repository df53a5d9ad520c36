tg_fuzz_target(ledger_row SOURCES fuzz_ledger_row.c LIBS tg_ledger_fmt)

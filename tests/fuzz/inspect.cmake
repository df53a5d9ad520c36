# Request body parse + rewrite (all options) and notice stripping on arbitrary bytes.
tg_fuzz_target(inspect SOURCES fuzz_inspect.c LIBS tg_inspect)

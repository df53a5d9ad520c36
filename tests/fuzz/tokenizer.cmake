tg_fuzz_target(tokenizer SOURCES fuzz_tokenizer.c LIBS tg_tokenizer)

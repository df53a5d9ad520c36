/* tok_main.c: the standalone `tg_tokens` executable (tests and operators): tollgate tokens. */
#include "meter/tokenizer/tokenizer.h"

int main(int argc, char **argv)
{
    return tg_tokens_main(argc, argv);
}

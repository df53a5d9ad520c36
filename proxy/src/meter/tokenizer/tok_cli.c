/* tok_cli.c: the `tollgate tokens` sub-command: count the tokens of stdin by hand. */
#include "meter/tokenizer/tokenizer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"

#define MAX_MESSAGES_BYTES ((size_t)256 << 20)

static const char usage[] =
    "usage: tollgate tokens (--model M | --encoding E) [--messages]\n"
    "\n"
    "Reads standard input and prints its token count.\n"
    "  --model M       the model whose tokenizer to use (\"openai/gpt-4o\", \"gpt-4\", ...);\n"
    "                  gpt-4o*, gpt-4.1*, gpt-4.5*, gpt-5*, o1*, o3*, o4* use o200k_base,\n"
    "                  gpt-4, gpt-3.5*, text-embedding-3*, ada-002 use cl100k_base, and any\n"
    "                  other model is approximated with o200k_base\n"
    "  --encoding E    o200k_base or cl100k_base (overrides --model)\n"
    "  --messages      stdin is a chat completions request body (JSON): print the prompt\n"
    "                  tokens as billed (3 per message + fields, +3 for the reply)\n"
    "  --help          this text\n"
    "Exit status: 0, or 2 with one line on stderr.\n";

static int fail(const char *what, const char *arg)
{
    if (arg != NULL)
        fprintf(stderr, "tokens: %s: %s\n", what, arg);
    else
        fprintf(stderr, "tokens: %s\n", what);
    return 2;
}

/* Value of --name V / --name=V at argv[*i]; NULL when argv[*i] is not that option. */
static const char *option(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static ssize_t read_some(char *p, size_t n)
{
    for (;;) {
        ssize_t got = read(STDIN_FILENO, p, n);
        if (got >= 0 || errno != EINTR)
            return got;
    }
}

static int count_text(enum tg_encoding enc, int64_t *out)
{
    char chunk[65536];
    struct tg_token_counter c;
    tg_token_counter_init(&c, enc);
    for (;;) {
        ssize_t got = read_some(chunk, sizeof(chunk));
        if (got < 0) {
            tg_token_counter_cleanup(&c);
            return fail("reading stdin", strerror(errno));
        }
        if (got == 0)
            break;
        tg_token_counter_feed(&c, chunk, (size_t)got);
    }
    *out = tg_token_counter_finish(&c);
    tg_token_counter_cleanup(&c);
    return *out < 0 ? fail("out of memory", NULL) : 0;
}

static int count_messages(enum tg_encoding enc, int64_t *out)
{
    struct tg_buf body = {0};
    int rc = 0;
    for (;;) {
        if (body.len >= MAX_MESSAGES_BYTES) {
            rc = fail("stdin is larger than 256 MiB", NULL);
            goto out;
        }
        if (tg_buf_reserve(&body, 65536) != 0) {
            rc = fail("out of memory", NULL);
            goto out;
        }
        ssize_t got = read_some(body.data + body.len, body.cap - body.len - 1);
        if (got < 0) {
            rc = fail("reading stdin", strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        body.len += (size_t)got;
    }
    if (tg_tokens_count_chat(enc, body.data ? body.data : "", body.len, out) != 0)
        rc = fail("stdin is not a chat request body (a JSON object with a \"messages\" array)",
                  NULL);
out:
    tg_buf_cleanup(&body);
    return rc;
}

int tg_tokens_main(int argc, char **argv)
{
    const char *model = NULL, *encoding = NULL, *v;
    bool messages = false;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--messages") == 0) {
            messages = true;
        } else if ((v = option(argc, argv, &i, "--model", &missing)) != NULL) {
            model = v;
        } else if ((v = option(argc, argv, &i, "--encoding", &missing)) != NULL) {
            encoding = v;
        } else if (missing) {
            return fail("option needs a value", argv[i]);
        } else {
            return fail("unknown argument (see --help)", argv[i]);
        }
    }
    enum tg_encoding enc;
    if (encoding != NULL) {
        if (tg_encoding_parse(encoding, &enc) != 0)
            return fail("unknown encoding (o200k_base or cl100k_base)", encoding);
    } else if (model != NULL) {
        enc = tg_tokenizer_for_model(model);
    } else {
        return fail("--model or --encoding is required (see --help)", NULL);
    }
    int64_t n = 0;
    int rc = messages ? count_messages(enc, &n) : count_text(enc, &n);
    if (rc != 0)
        return rc;
    if (printf("%" PRId64 "\n", n) < 0 || fflush(stdout) != 0)
        return fail("writing stdout", strerror(errno));
    return 0;
}

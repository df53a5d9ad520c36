/* fuzz_inspect.c: request parse + rewrite (all options) and notice stripping on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"
#include "meter/inspect.h"
#include "meter/notice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void count_bytes(void *arg, const char *p, size_t n, int part)
{
    size_t *total = arg;
    check(part >= TG_PROMPT_TEXT && part <= TG_PROMPT_TOKEN_IDS);
    check((p == NULL) == (part == TG_PROMPT_TOKEN_IDS));
    if (p != NULL && n > 0)
        *total += (size_t)(unsigned char)p[0] + (size_t)(unsigned char)p[n - 1];
}

static void one_route(enum tg_route route, const char *body, size_t len)
{
    struct tg_req_info info;
    char err[128];
    int prc = tg_inspect_parse(route, body, len, &info, err, sizeof(err));
    check(prc == 0 || err[0] != '\0');
    if (prc == 0) {
        check(info.user_len <= 128);
        check(!info.has_model || (strlen(info.model) > 0 && strlen(info.model) < 256));
    }
    size_t total = 0;
    tg_inspect_prompt_text(route, body, len, count_bytes, &total);
    (void)tg_inspect_message_count(route, body, len);

    static const char id[] = "user-\"\\\n\xff\xe2\x9a";
    struct tg_rewrite_opts opts = {
        .include_usage = true, .user_id = id, .user_id_len = sizeof(id) - 1, .strip_notice = true};
    struct tg_buf out = {0};
    bool changed = false;
    int rc = tg_inspect_rewrite(route, body, len, &opts, &out, &changed);
    struct tg_jv root;
    bool valid_object = tg_json_parse(body, len, &root, NULL) == 0 && root.type == TG_JSON_OBJECT;
    check((rc == 0) == valid_object);
    check(prc != 0 || rc == 0 || len == 0);
    if (rc == 0 && changed) {
        struct tg_jv r2;
        check(tg_json_parse(out.data, out.len, &r2, NULL) == 0 && r2.type == TG_JSON_OBJECT);
        /* a second pass has nothing left to do except strings it cannot shorten */
        struct tg_buf again = {0};
        bool changed2 = false;
        check(tg_inspect_rewrite(route, out.data, out.len, &opts, &again, &changed2) == 0);
        check(!changed2);
        tg_buf_cleanup(&again);
    } else {
        check(out.len == 0);
    }
    tg_buf_cleanup(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    for (int r = TG_ROUTE_NONE; r <= TG_ROUTE_MODELS; r++)
        one_route((enum tg_route)r, body, size);

    char *copy = malloc(size + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    size_t n1 = tg_notice_strip(copy, size);
    check(n1 <= size);
    size_t n2 = tg_notice_strip(copy, n1);
    check(n2 == n1);
    free(copy);

    struct tg_buf a = {0}, b = {0};
    if (tg_notice_split_finish(body, size, &a, &b) == 0) {
        struct tg_jv ra, rb;
        check(tg_json_parse(a.data, a.len, &ra, NULL) == 0);
        check(tg_json_parse(b.data, b.len, &rb, NULL) == 0);
    }
    tg_buf_cleanup(&a);
    tg_buf_cleanup(&b);
    return 0;
}

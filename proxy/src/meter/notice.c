/* notice.c: the 80 % quota notice: text, SSE chunk, finish-chunk split and history stripping. */
#include "meter/notice.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"
#include "meter/inspect.h"

static const char *const month_names[12] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December",
};

int tg_notice_format(char *dst, size_t cap, int percent, const char *period, int reset_day,
                     int reset_month, int reset_year, int current_year)
{
    const char *adj;
    if (dst == NULL || period == NULL || percent < 0 || percent > 1000000)
        return -1;
    bool resets = true;
    if (strcmp(period, "month") == 0) {
        adj = "monthly ";
    } else if (strcmp(period, "week") == 0) {
        adj = "weekly ";
    } else if (strcmp(period, "day") == 0) {
        adj = "daily ";
    } else if (strcmp(period, "none") == 0) {
        adj = "";
        resets = false;
    } else {
        return -1;
    }
    int n;
    if (!resets) {
        n = snprintf(dst, cap,
                     "\n\n> " TG_NOTICE_SIGN " You have used %d %% of your AI quota; "
                     "it does not reset.",
                     percent);
    } else {
        if (reset_day < 1 || reset_day > 31 || reset_month < 1 || reset_month > 12)
            return -1;
        const char *month = month_names[reset_month - 1];
        if (reset_year != current_year)
            n = snprintf(dst, cap,
                         "\n\n> " TG_NOTICE_SIGN " You have used %d %% of your %sAI quota; "
                         "it resets on %d %s %d.",
                         percent, adj, reset_day, month, reset_year);
        else
            n = snprintf(dst, cap,
                         "\n\n> " TG_NOTICE_SIGN " You have used %d %% of your %sAI quota; "
                         "it resets on %d %s.",
                         percent, adj, reset_day, month);
    }
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}

int tg_notice_chunk(struct tg_buf *out, const char *chunk_id, int64_t created, const char *model,
                    const char *text, size_t text_len)
{
    size_t mark = out->len;
    if (tg_buf_puts(out, "data: {\"id\":") != 0 ||
        tg_json_escape(out, chunk_id, strlen(chunk_id)) != 0 ||
        tg_buf_printf(out, ",\"object\":\"chat.completion.chunk\",\"created\":%" PRId64 ",",
                      created) != 0 ||
        tg_buf_puts(out, "\"model\":") != 0 || tg_json_escape(out, model, strlen(model)) != 0 ||
        tg_buf_puts(out, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":") != 0 ||
        tg_json_escape(out, text, text_len) != 0 ||
        tg_buf_puts(out, "},\"finish_reason\":null}]}\n\n") != 0) {
        out->len = mark;
        if (out->data != NULL)
            out->data[mark] = '\0';
        return -1;
    }
    return 0;
}

static void add_edit(struct tg_splice *edits, size_t *n, const char *base, const struct tg_jv *v,
                     const char *ins)
{
    edits[*n].off = (size_t)(v->p - base);
    edits[*n].del = v->n;
    edits[*n].ins = ins;
    edits[*n].ins_len = strlen(ins);
    (*n)++;
}

int tg_notice_split_finish(const char *data, size_t len, struct tg_buf *content_part,
                           struct tg_buf *finish_part)
{
    struct tg_jv root, choices, choice;
    if (tg_json_parse(data, len, &root, NULL) != 0 || root.type != TG_JSON_OBJECT ||
        !tg_json_get(&root, "choices", &choices) || choices.type != TG_JSON_ARRAY)
        return -1;
    size_t n_choices = 0;
    struct tg_json_iter it;
    tg_json_iter_init(&it, &choices);
    while (tg_json_next_elem(&it, &choice))
        n_choices++;
    /* (a): one finish_reason per choice + usage; (b): delta and logprobs per choice */
    struct tg_splice *ea = calloc(2 * n_choices + 1, sizeof(*ea));
    struct tg_splice *eb = calloc(2 * n_choices + 1, sizeof(*eb));
    int rc = -1;
    size_t na = 0, nb = 0;
    size_t mark_a = content_part->len, mark_b = finish_part->len;
    if (ea == NULL || eb == NULL)
        goto out;
    tg_json_iter_init(&it, &choices);
    while (tg_json_next_elem(&it, &choice)) {
        struct tg_jv v;
        if (choice.type != TG_JSON_OBJECT)
            continue;
        if (tg_json_get(&choice, "finish_reason", &v) && v.type != TG_JSON_NULL)
            add_edit(ea, &na, data, &v, "null");
        if (tg_json_get(&choice, "delta", &v))
            add_edit(eb, &nb, data, &v, "{}");
        if (tg_json_get(&choice, "logprobs", &v) && v.type != TG_JSON_NULL)
            add_edit(eb, &nb, data, &v, "null");
    }
    struct tg_jv usage;
    if (tg_json_get(&root, "usage", &usage) && usage.type != TG_JSON_NULL)
        add_edit(ea, &na, data, &usage, "null");
    if (tg_inspect_splice(data, len, ea, na, content_part) != 0)
        goto out;
    if (tg_inspect_splice(data, len, eb, nb, finish_part) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        content_part->len = mark_a;
        if (content_part->data != NULL)
            content_part->data[mark_a] = '\0';
        finish_part->len = mark_b;
        if (finish_part->data != NULL)
            finish_part->data[mark_b] = '\0';
    }
    free(ea);
    free(eb);
    return rc;
}

/* ---- stripping ------------------------------------------------------------------------------ */

static bool has_at(const char *t, size_t len, size_t i, const char *lit, size_t litlen)
{
    return len - i >= litlen && memcmp(t + i, lit, litlen) == 0;
}

static bool is_word_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == ' ' || c == '-';
}

/* Length of the notice line starting at i (up to, not including, its '\n'), or 0. */
static size_t match_notice(const char *t, size_t len, size_t i)
{
    static const char head[] = "> \xE2\x9A\xA0";
    static const char vs16[] = "\xEF\xB8\x8F";
    static const char used[] = " You have used ";
    static const char of_your[] = "% of your ";
    static const char quota[] = "AI quota; ";
    size_t j = i;
    if (!has_at(t, len, j, head, sizeof(head) - 1))
        return 0;
    j += sizeof(head) - 1;
    if (has_at(t, len, j, vs16, sizeof(vs16) - 1))
        j += sizeof(vs16) - 1;
    if (!has_at(t, len, j, used, sizeof(used) - 1))
        return 0;
    j += sizeof(used) - 1;
    size_t digits = 0;
    while (j < len && t[j] >= '0' && t[j] <= '9' && digits < 8) {
        j++;
        digits++;
    }
    if (digits == 0 || digits > 7)
        return 0;
    if (j < len && t[j] == ' ')
        j++;
    if (!has_at(t, len, j, of_your, sizeof(of_your) - 1))
        return 0;
    j += sizeof(of_your) - 1;
    for (size_t words = 0;; words++, j++) {
        if (has_at(t, len, j, quota, sizeof(quota) - 1))
            break;
        if (words >= 40 || j >= len || !is_word_byte(t[j]))
            return 0;
    }
    j += sizeof(quota) - 1;
    const char *nl = memchr(t + j, '\n', len - j);
    size_t end = nl ? (size_t)(nl - t) : len;
    return end - i;
}

size_t tg_notice_strip(char *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (i > 0 && text[i - 1] != '\n') {
            const char *nl = memchr(text + i, '\n', len - i);
            if (nl == NULL)
                break;
            i = (size_t)(nl - text) + 1;
            continue;
        }
        size_t line = match_notice(text, len, i);
        if (line == 0) {
            i++;
            continue;
        }
        size_t start = i, end = i + line;
        if (start >= 2 && text[start - 1] == '\n' && text[start - 2] == '\n')
            start -= 2;
        else if (start >= 1)
            start -= 1;
        else if (end < len && text[end] == '\n')
            end++;
        memmove(text + start, text + end, len - end);
        len -= end - start;
        i = start;
    }
    return len;
}

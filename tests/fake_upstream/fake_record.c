/* fake_record.c: recorded requests of the fake upstream and their JSON form. */
#include "fake_record.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct tg_fake_record *tg_fake_record_create(const char *raw, size_t head_len,
                                             const struct tg_fake_head *head)
{
    struct tg_fake_record *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->refs = 1;
    r->closed_at_ms = -1;
    r->head = malloc(head_len + 1);
    r->headers = calloc(head->num_headers ? head->num_headers : 1, sizeof(*r->headers));
    r->body = malloc(1);
    if (r->head == NULL || r->headers == NULL || r->body == NULL) {
        tg_fake_record_release(r);
        return NULL;
    }
    memcpy(r->head, raw, head_len);
    r->head[head_len] = '\0';
    r->head_len = head_len;
    r->body[0] = '\0';
    r->method = r->head + (head->method - raw);
    r->method_len = head->method_len;
    r->target = r->head + (head->target - raw);
    r->target_len = head->target_len;
    r->num_headers = head->num_headers;
    for (size_t i = 0; i < head->num_headers; i++) {
        struct tg_fake_header *h = &r->headers[i];
        char *name = r->head + (head->headers[i].name - raw);
        for (size_t k = 0; k < head->headers[i].name_len; k++)
            name[k] = (char)tolower((unsigned char)name[k]);
        h->name = name;
        h->name_len = head->headers[i].name_len;
        h->value = r->head + (head->headers[i].value - raw);
        h->value_len = head->headers[i].value_len;
    }
    return r;
}

void tg_fake_record_release(struct tg_fake_record *r)
{
    if (r == NULL || --r->refs > 0)
        return;
    free(r->head);
    free(r->headers);
    free(r->body);
    free(r);
}

const char *tg_fake_record_header(const struct tg_fake_record *r, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->num_headers; i++) {
        const struct tg_fake_header *h = &r->headers[i];
        if (h->name_len == n && memcmp(h->name, name, n) == 0) {
            *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

/* A JSON string of bytes that should be UTF-8; invalid sequences become U+FFFD. */
static json_t *text_json(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j != NULL)
        return j;
    char *fixed = malloc(n * 3 + 1);
    if (fixed == NULL)
        return json_string("");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            fixed[o++] = (char)c;
        } else {
            memcpy(fixed + o, "\xef\xbf\xbd", 3);
            o += 3;
        }
    }
    j = json_stringn(fixed, o);
    free(fixed);
    return j ? j : json_string("");
}

json_t *tg_fake_record_to_json(const struct tg_fake_record *r)
{
    json_t *headers = json_object();
    for (size_t i = 0; i < r->num_headers; i++) {
        const struct tg_fake_header *h = &r->headers[i];
        char name[256];
        size_t n = h->name_len < sizeof(name) - 1 ? h->name_len : sizeof(name) - 1;
        memcpy(name, h->name, n);
        name[n] = '\0';
        json_t *prev = json_object_get(headers, name);
        if (prev != NULL) {
            /* Repeated fields are joined as one comma-separated value (RFC 9110 §5.3). */
            size_t pl = json_string_length(prev);
            char *joined = malloc(pl + 2 + h->value_len);
            if (joined != NULL) {
                memcpy(joined, json_string_value(prev), pl);
                memcpy(joined + pl, ", ", 2);
                memcpy(joined + pl + 2, h->value, h->value_len);
                json_object_set_new(headers, name, text_json(joined, pl + 2 + h->value_len));
                free(joined);
            }
        } else {
            json_object_set_new(headers, name, text_json(h->value, h->value_len));
        }
    }
    json_t *body_json = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, NULL);
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer((json_int_t)r->seq));
    json_object_set_new(o, "method", text_json(r->method, r->method_len));
    json_object_set_new(o, "path", text_json(r->target, r->target_len));
    json_object_set_new(o, "headers", headers);
    json_object_set_new(o, "body", text_json(r->body, r->body_len));
    json_object_set_new(o, "body_json", body_json ? body_json : json_null());
    json_object_set_new(o, "connection_id", json_integer((json_int_t)r->connection_id));
    json_object_set_new(o, "received_at_ms", json_integer(r->received_at_ms));
    json_object_set_new(o, "chunks_sent", json_integer(r->chunks_sent));
    json_object_set_new(o, "finished", json_boolean(r->is_finished));
    json_object_set_new(o, "client_closed", json_boolean(r->is_client_closed));
    json_object_set_new(o, "closed_at_ms",
                        r->closed_at_ms < 0 ? json_null() : json_integer(r->closed_at_ms));
    json_object_set_new(o, "dropped", json_boolean(r->is_dropped));
    json_object_set_new(o, "status", json_integer(r->status));
    json_object_set_new(o, "call_id", json_string(r->call_id));
    return o;
}

int tg_fake_store_init(struct tg_fake_store *st, size_t capacity, size_t max_bytes, FILE *file)
{
    memset(st, 0, sizeof(*st));
    st->ring = calloc(capacity, sizeof(*st->ring));
    if (st->ring == NULL)
        return -1;
    st->capacity = capacity;
    st->max_bytes = max_bytes;
    st->file = file;
    return 0;
}

static size_t record_bytes(const struct tg_fake_record *r)
{
    return r->head_len + r->body_len;
}

static void evict_oldest(struct tg_fake_store *st)
{
    struct tg_fake_record *r = st->ring[st->start];
    st->ring[st->start] = NULL;
    st->start = (st->start + 1) % st->capacity;
    st->count--;
    st->bytes -= record_bytes(r);
    tg_fake_record_release(r);
}

void tg_fake_store_cleanup(struct tg_fake_store *st)
{
    tg_fake_store_clear(st);
    free(st->ring);
    if (st->file != NULL)
        fclose(st->file);
    memset(st, 0, sizeof(*st));
}

void tg_fake_store_add(struct tg_fake_store *st, struct tg_fake_record *r)
{
    while (st->count > 0 &&
           (st->count == st->capacity || st->bytes + record_bytes(r) > st->max_bytes))
        evict_oldest(st);
    r->refs++;
    st->ring[(st->start + st->count) % st->capacity] = r;
    st->count++;
    st->bytes += record_bytes(r);
}

size_t tg_fake_store_clear(struct tg_fake_store *st)
{
    size_t n = st->count;
    while (st->count > 0)
        evict_oldest(st);
    st->start = 0;
    return n;
}

char *tg_fake_store_dump(const struct tg_fake_store *st)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < st->count; i++) {
        json_t *o = tg_fake_record_to_json(st->ring[(st->start + i) % st->capacity]);
        if (o != NULL)
            json_array_append_new(arr, o);
    }
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return s;
}

void tg_fake_store_log(struct tg_fake_store *st, struct tg_fake_record *r)
{
    if (st->file == NULL || r->is_logged)
        return;
    r->is_logged = true;
    json_t *o = tg_fake_record_to_json(r);
    if (o == NULL)
        return;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL)
        return;
    fputs(s, st->file);
    fputc('\n', st->file);
    fflush(st->file);
    free(s);
}

/* Integration tests for the quota Lua scripts through quota/quota_redis.c, against real
 * redis-server processes started here (one plain, one in cluster mode). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "quota/quota_redis.h"

/* ---- redis-server processes ---- */

struct srv {
    pid_t pid;
    int port;
    bool cluster;
    char dir[64];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Everything started here, so that a failed test (which skips its own clean-up) leaves no
 * process or directory behind: the group teardown removes what is left. */
static pid_t spawned_pids[64];
static char spawned_dirs[64][64];

static void remember_pid(pid_t pid)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(spawned_pids); i++)
        if (spawned_pids[i] == 0) {
            spawned_pids[i] = pid;
            return;
        }
}

static void reap(pid_t pid)
{
    kill(pid, SIGCONT);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (size_t i = 0; i < TG_ARRAY_LEN(spawned_pids); i++)
        if (spawned_pids[i] == pid)
            spawned_pids[i] = 0;
}

static void remember_dir(const char *dir)
{
    for (size_t i = 0; i < TG_ARRAY_LEN(spawned_dirs); i++)
        if (spawned_dirs[i][0] == '\0') {
            snprintf(spawned_dirs[i], sizeof(spawned_dirs[i]), "%s", dir);
            return;
        }
}

static void remove_dir(const char *dir)
{
    char rm[128];
    snprintf(rm, sizeof(rm), "rm -rf %s", dir);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    for (size_t i = 0; i < TG_ARRAY_LEN(spawned_dirs); i++)
        if (strcmp(spawned_dirs[i], dir) == 0)
            spawned_dirs[i][0] = '\0';
}

static int cleanup_all(void **state)
{
    (void)state;
    for (size_t i = 0; i < TG_ARRAY_LEN(spawned_pids); i++)
        if (spawned_pids[i] > 0)
            reap(spawned_pids[i]);
    for (size_t i = 0; i < TG_ARRAY_LEN(spawned_dirs); i++)
        if (spawned_dirs[i][0] != '\0')
            remove_dir(spawned_dirs[i]);
    return 0;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("free_port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

static redisContext *sync_connect(int port)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL)
        fail_msg("redis command failed: %s", c->errstr);
    return r;
}

static long long cmd_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER)
        fail_msg("expected an integer reply (%s)", r && r->str ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static bool srv_answers(const struct srv *s)
{
    redisContext *c = sync_connect(s->port);
    if (c == NULL)
        return false;
    redisReply *r = redisCommand(c, "PING");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

static bool exec_server(struct srv *s)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", s->port);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", s->dir, "--cluster-enabled",
               s->cluster ? "yes" : "no", "--cluster-config-file", "nodes.conf", NULL);
        _exit(127);
    }
    s->pid = pid;
    remember_pid(pid);
    int64_t deadline = mono_ms() + 10000;
    while (mono_ms() < deadline) {
        if (srv_answers(s))
            return true;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            for (size_t i = 0; i < TG_ARRAY_LEN(spawned_pids); i++)
                if (spawned_pids[i] == pid)
                    spawned_pids[i] = 0;
            s->pid = 0;
            return false;
        }
        usleep(10000);
    }
    reap(pid);
    s->pid = 0;
    return false;
}

static void srv_start(struct srv *s)
{
    snprintf(s->dir, sizeof(s->dir), "/tmp/tg-quota-lua-XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        fail_msg("mkdtemp: %s", strerror(errno));
    remember_dir(s->dir);
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = free_port();
        if (exec_server(s))
            return;
    }
    fail_msg("redis-server did not start");
}

static void srv_stop(struct srv *s)
{
    if (s->pid > 0) {
        reap(s->pid);
        s->pid = 0;
    }
    remove_dir(s->dir);
}

/* ---- async plumbing ---- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void run_for(struct event_base *base, int ms)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 5000};
    event_add(tick, &tv);
    int64_t deadline = mono_ms() + ms;
    while (mono_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
}

static void run_until_count(struct event_base *base, const int *count, int want, int ms)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 5000};
    event_add(tick, &tv);
    int64_t deadline = mono_ms() + ms;
    while (*count < want && mono_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    if (*count < want)
        fail_msg("only %d of %d callbacks after %d ms", *count, want, ms);
}

struct qres {
    int calls;
    struct tg_quota_result r;
    char err[160];
};

static void on_q(void *arg, const struct tg_quota_result *res)
{
    struct qres *q = arg;
    q->calls++;
    q->r = *res;
    snprintf(q->err, sizeof(q->err), "%s", res->error ? res->error : "");
    q->r.error = NULL;
}

/* The world of one test: a loop, clients, a key prefix, the current period. */
struct world {
    struct srv srv;
    struct event_base *base;
    struct tg_redis *r[3];
    redisContext *sync;
    char prefix[64];
    struct tg_tz *tz;
    struct tg_period_bounds b;
    int64_t dedupe_ms;
};

static void world_clients(struct world *w)
{
    struct tg_redis_opts o = {.host = "127.0.0.1",
                              .port = w->srv.port,
                              .timeout_ms = 2000,
                              .reconnect_min_ms = 20,
                              .reconnect_max_ms = 200};
    for (int i = 0; i < 3; i++) {
        w->r[i] = tg_redis_create(w->base, &o);
        assert_non_null(w->r[i]);
    }
    int64_t deadline = mono_ms() + 5000;
    for (int i = 0; i < 3; i++)
        while (!tg_redis_is_ready(w->r[i]) && mono_ms() < deadline)
            run_for(w->base, 5);
    for (int i = 0; i < 3; i++)
        if (!tg_redis_is_ready(w->r[i]))
            fail_msg("client %d not ready: %s", i, tg_redis_last_error(w->r[i]));
}

static void world_open(struct world *w, const char *prefix, enum tg_period p, bool cluster)
{
    memset(w, 0, sizeof(*w));
    w->srv.cluster = cluster;
    srv_start(&w->srv);
    w->sync = sync_connect(w->srv.port);
    assert_non_null(w->sync);
    if (cluster) {
        redisReply *r = cmd(w->sync, "CLUSTER ADDSLOTSRANGE 0 16383");
        assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
        int64_t deadline = mono_ms() + 10000;
        bool ok = false;
        while (!ok && mono_ms() < deadline) {
            r = cmd(w->sync, "CLUSTER INFO");
            ok = r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_state:ok") != NULL;
            freeReplyObject(r);
            if (!ok)
                usleep(20000);
        }
        assert_true(ok);
    }
    w->base = event_base_new();
    world_clients(w);
    snprintf(w->prefix, sizeof(w->prefix), "%s", prefix);
    char err[128];
    w->tz = tg_tz_load("Europe/Lisbon", err, sizeof(err));
    assert_non_null(w->tz);
    assert_int_equal(tg_quota_period_bounds(wall_ms() / 1000, p, w->tz, &w->b), 0);
    w->dedupe_ms = 600000;
}

static void world_close(struct world *w)
{
    for (int i = 0; i < 3; i++)
        tg_redis_destroy(w->r[i]);
    event_base_free(w->base);
    redisFree(w->sync);
    tg_tz_destroy(w->tz);
    srv_stop(&w->srv);
}

static struct tg_quota_subject subj(char kind, const char *id, int64_t limit)
{
    struct tg_quota_subject s;
    assert_int_equal(tg_quota_subject_init(&s, kind, id, limit), 0);
    return s;
}

static void wait_one(struct world *w, struct qres *q)
{
    run_until_count(w->base, &q->calls, 1, 5000);
    run_for(w->base, 1);
    assert_int_equal(q->calls, 1);
}

static struct tg_quota_result reserve(struct world *w, const struct tg_quota_subject *s,
                                      const char *id, int64_t amount, int64_t now_ms,
                                      int64_t ttl_ms, bool claim)
{
    struct qres q = {0};
    assert_int_equal(tg_quota_reserve_start(w->r[0], w->prefix, s, &w->b, id, amount, now_ms,
                                            ttl_ms, claim, on_q, &q),
                     0);
    assert_int_equal(q.calls, 0);
    wait_one(w, &q);
    if (!q.r.ok)
        fail_msg("reserve failed: %s", q.err);
    return q.r;
}

static struct tg_quota_result settle(struct world *w, const struct tg_quota_subject *s,
                                     const char *id, int64_t tokens, int64_t finish_ms,
                                     bool give_back)
{
    struct qres q = {0};
    assert_int_equal(tg_quota_settle_start(w->r[0], w->prefix, s, &w->b, id, tokens, finish_ms, 80,
                                           give_back, w->dedupe_ms, on_q, &q),
                     0);
    wait_one(w, &q);
    if (!q.r.ok)
        fail_msg("settle failed: %s", q.err);
    return q.r;
}

static struct tg_quota_result release(struct world *w, const struct tg_quota_subject *s,
                                      const char *id, bool give_back)
{
    struct qres q = {0};
    assert_int_equal(tg_quota_release_start(w->r[0], w->prefix, s, &w->b, id, give_back, on_q, &q),
                     0);
    wait_one(w, &q);
    if (!q.r.ok)
        fail_msg("release failed: %s", q.err);
    return q.r;
}

static struct tg_quota_result init(struct world *w, const struct tg_quota_subject *s,
                                   int64_t ledger, int64_t since_ms, bool warned, bool exhausted)
{
    struct qres q = {0};
    assert_int_equal(tg_quota_init_start(w->r[0], w->prefix, s, &w->b, ledger, since_ms, warned,
                                         exhausted, 80, on_q, &q),
                     0);
    wait_one(w, &q);
    if (!q.r.ok)
        fail_msg("init failed: %s", q.err);
    return q.r;
}

static struct tg_quota_result peek(struct world *w, const struct tg_quota_subject *s,
                                   int64_t now_ms)
{
    struct qres q = {0};
    assert_int_equal(tg_quota_peek_start(w->r[0], w->prefix, s, &w->b, now_ms, on_q, &q), 0);
    wait_one(w, &q);
    if (!q.r.ok)
        fail_msg("peek failed: %s", q.err);
    return q.r;
}

#define EXPECT(res, c, u, rv)                                                                      \
    do {                                                                                           \
        struct tg_quota_result x_ = (res);                                                         \
        if (x_.code != (c) || x_.used != (u) || x_.reserved != (rv))                               \
            fail_msg("line %d: code %d used %lld reserved %lld (want %d %lld %lld)", __LINE__,     \
                     (int)x_.code, (long long)x_.used, (long long)x_.reserved, (int)(c),           \
                     (long long)(u), (long long)(rv));                                             \
    } while (0)

static void key(struct world *w, const struct tg_quota_subject *s, const char *suffix, char *dst,
                size_t cap)
{
    assert_true(tg_quota_key(dst, cap, w->prefix, s->tag, w->b.key, suffix) > 0);
}

/* ---- tests ---- */

static void test_keys_and_tags(void **state)
{
    (void)state;
    static const struct {
        int line;
        char kind;
        const char *id, *tag;
    } rows[] = {
        {__LINE__, 'u', "alice", "{u:alice}"},
        {__LINE__, 't', "eng", "{t:eng}"},
        {__LINE__, 'u', "a}b", "{u:a%7db}"},
        {__LINE__, 'u', "a{b", "{u:a%7bb}"},
        {__LINE__, 'u', "x:y", "{u:x%3ay}"},
        {__LINE__, 'u', "50%", "{u:50%25}"},
        {__LINE__, 'u', "#1", "{u:%231}"},
        {__LINE__, 'u', "j d\n", "{u:j%20d%0a}"},
        {__LINE__, 'u', "j\xc3\xbcrgen@example.com", "{u:j\xc3\xbcrgen@example.com}"},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        struct tg_quota_subject s;
        assert_int_equal(tg_quota_subject_init(&s, rows[i].kind, rows[i].id, 7), 0);
        if (strcmp(s.tag, rows[i].tag) != 0 || s.limit != 7)
            fail_msg("line %d: %s", rows[i].line, s.tag);
    }
    struct tg_quota_subject s;
    char longid[400];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(tg_quota_subject_init(&s, 'u', longid, 1), 0);
    assert_int_equal(strlen(s.tag), 3 + 1 + 64 + 1);
    assert_memory_equal(s.tag, "{u:#", 4);
    struct tg_quota_subject s2;
    longid[0] = 'y';
    assert_int_equal(tg_quota_subject_init(&s2, 'u', longid, 1), 0);
    assert_string_not_equal(s.tag, s2.tag);
    /* 52 '}' escape to 156 bytes: does not fit, hashed */
    char braces[60];
    memset(braces, '}', 52);
    braces[52] = '\0';
    assert_int_equal(tg_quota_subject_init(&s, 'u', braces, 1), 0);
    assert_memory_equal(s.tag, "{u:#", 4);
    assert_int_equal(tg_quota_subject_init(&s, 'x', "alice", 1), -1);
    assert_int_equal(tg_quota_subject_init(&s, 'u', "", 1), -1);
    assert_int_equal(tg_quota_subject_init(&s, 'u', NULL, 1), -1);

    char k[128];
    assert_int_equal(tg_quota_key(k, sizeof(k), "tg:", "{u:alice}", "m2026-11", ""), 21);
    assert_string_equal(k, "tg:{u:alice}:m2026-11");
    assert_true(tg_quota_key(k, sizeof(k), "tg:", "{u:alice}", "m2026-11", ":rz") > 0);
    assert_string_equal(k, "tg:{u:alice}:m2026-11:rz");
    assert_int_equal(tg_quota_key(k, sizeof(k), "tg{", "{u:alice}", "m2026-11", ""), -1);
    assert_int_equal(tg_quota_key(k, sizeof(k), "tg}", "{u:alice}", "m2026-11", ""), -1);
    assert_int_equal(tg_quota_key(k, 10, "tg:", "{u:alice}", "m2026-11", ""), -1);
    assert_int_equal(tg_quota_key(k, sizeof(k), "tg:", "u:alice", "m2026-11", ""), -1);
}

static void test_script_shas(void **state)
{
    (void)state;
    struct srv s = {0};
    srv_start(&s);
    redisContext *c = sync_connect(s.port);
    const struct tg_redis_script *all[] = {&tg_quota_lua_reserve, &tg_quota_lua_settle,
                                           &tg_quota_lua_release, &tg_quota_lua_init,
                                           &tg_quota_lua_peek};
    for (size_t i = 0; i < TG_ARRAY_LEN(all); i++) {
        assert_int_equal(strlen(all[i]->source), all[i]->source_len);
        redisReply *r = cmd(c, "SCRIPT LOAD %b", all[i]->source, all[i]->source_len);
        if (r->type != REDIS_REPLY_STRING || strcmp(r->str, all[i]->sha1) != 0)
            fail_msg("%s: %s vs %s", all[i]->name, r->str, all[i]->sha1);
        freeReplyObject(r);
    }
    redisFree(c);
    srv_stop(&s);
}

static void test_reserve_settle_release(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, "t1:", TG_PERIOD_MONTH, false);
    struct tg_quota_subject s = subj('u', "alice", 1000);
    int64_t now = wall_ms(), ttl = 60000;
    EXPECT(reserve(&w, &s, "r1", 100, now, ttl, false), TG_QUOTA_CODE_NEED_INIT, 0, 0);
    EXPECT(peek(&w, &s, now), TG_QUOTA_CODE_NEED_INIT, 0, 0);
    EXPECT(release(&w, &s, "r1", false), TG_QUOTA_CODE_NEED_INIT, 0, 0);
    EXPECT(init(&w, &s, 0, now, false, false), TG_QUOTA_CODE_OK, 0, 0);
    EXPECT(reserve(&w, &s, "r1", 100, now, ttl, false), TG_QUOTA_CODE_OK, 0, 100);
    /* the same request reserving again takes nothing more */
    EXPECT(reserve(&w, &s, "r1", 100, now, ttl, false), TG_QUOTA_CODE_OK, 0, 100);
    EXPECT(reserve(&w, &s, "r2", 300, now, ttl, false), TG_QUOTA_CODE_OK, 0, 400);
    EXPECT(peek(&w, &s, now), TG_QUOTA_CODE_OK, 0, 400);
    EXPECT(settle(&w, &s, "r1", 80, now, false), TG_QUOTA_CODE_OK, 80, 300);
    /* a repeated settle changes nothing */
    EXPECT(settle(&w, &s, "r1", 80, now, false), TG_QUOTA_CODE_DUPLICATE, 80, 300);
    EXPECT(release(&w, &s, "r2", false), TG_QUOTA_CODE_OK, 80, 0);
    EXPECT(release(&w, &s, "r2", false), TG_QUOTA_CODE_OK, 80, 0);
    EXPECT(release(&w, &s, "never", false), TG_QUOTA_CODE_OK, 80, 0);
    /* a settle without reservation (its reservation expired) still counts */
    EXPECT(settle(&w, &s, "r3", 20, now, false), TG_QUOTA_CODE_OK, 100, 0);
    EXPECT(peek(&w, &s, now), TG_QUOTA_CODE_OK, 100, 0);
    /* the hash holds no leftovers of finished requests */
    char h[256];
    key(&w, &s, "", h, sizeof(h));
    assert_int_equal(cmd_int(w.sync, "HEXISTS %s r:r1", h), 0);
    assert_int_equal(cmd_int(w.sync, "HEXISTS %s r:r2", h), 0);
    /* subjects are independent */
    struct tg_quota_subject t = subj('t', "alice", 1000);
    EXPECT(reserve(&w, &t, "r1", 100, now, ttl, false), TG_QUOTA_CODE_NEED_INIT, 0, 0);

    /* invalid arguments: -1 and no callback */
    struct qres q = {0};
    assert_int_equal(
        tg_quota_reserve_start(w.r[0], w.prefix, &s, &w.b, "", 1, now, ttl, false, on_q, &q), -1);
    assert_int_equal(
        tg_quota_reserve_start(w.r[0], w.prefix, &s, &w.b, "a\nb", 1, now, ttl, false, on_q, &q),
        -1);
    assert_int_equal(
        tg_quota_reserve_start(w.r[0], w.prefix, &s, &w.b, "x", -1, now, ttl, false, on_q, &q), -1);
    assert_int_equal(
        tg_quota_reserve_start(w.r[0], w.prefix, &s, &w.b, "x", 1, now, 0, false, on_q, &q), -1);
    assert_int_equal(
        tg_quota_reserve_start(w.r[0], "bad{", &s, &w.b, "x", 1, now, ttl, false, on_q, &q), -1);
    assert_int_equal(
        tg_quota_settle_start(w.r[0], w.prefix, &s, &w.b, "x", -5, now, 80, false, 1000, on_q, &q),
        -1);
    assert_int_equal(
        tg_quota_init_start(w.r[0], w.prefix, &s, &w.b, -1, now, false, false, 80, on_q, &q), -1);
    assert_int_equal(tg_quota_peek_start(NULL, w.prefix, &s, &w.b, now, on_q, &q), -1);
    run_for(w.base, 20);
    assert_int_equal(q.calls, 0);
    world_close(&w);
}

static void test_blocking_at_limit(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, "t2:", TG_PERIOD_DAY, false);
    int64_t now = wall_ms(), ttl = 60000;
    struct tg_quota_subject s = subj('u', "bob", 1000);
    EXPECT(init(&w, &s, 900, now, true, false), TG_QUOTA_CODE_OK, 900, 0);
    EXPECT(reserve(&w, &s, "a", 50, now, ttl, false), TG_QUOTA_CODE_OK, 900, 50);
    EXPECT(reserve(&w, &s, "b", 60, now, ttl, false), TG_QUOTA_CODE_OK, 900, 110);
    /* 900 + 110 >= 1000 */
    EXPECT(reserve(&w, &s, "c", 1, now, ttl, false), TG_QUOTA_CODE_BLOCKED, 900, 110);
    EXPECT(release(&w, &s, "b", false), TG_QUOTA_CODE_OK, 900, 50);
    EXPECT(reserve(&w, &s, "c", 1, now, ttl, false), TG_QUOTA_CODE_OK, 900, 51);
    EXPECT(settle(&w, &s, "a", 99, now, false), TG_QUOTA_CODE_OK, 999, 1);
    EXPECT(settle(&w, &s, "c", 1, now, false), TG_QUOTA_CODE_OK, 1000, 0);
    /* used >= limit blocks even a zero reservation */
    EXPECT(reserve(&w, &s, "d", 0, now, ttl, false), TG_QUOTA_CODE_BLOCKED, 1000, 0);

    struct tg_quota_subject zero = subj('u', "zero", 0);
    EXPECT(init(&w, &zero, 0, now, false, false), TG_QUOTA_CODE_OK, 0, 0);
    EXPECT(reserve(&w, &zero, "z", 0, now, ttl, false), TG_QUOTA_CODE_BLOCKED, 0, 0);

    struct tg_quota_subject unl = subj('u', "unlimited", -1);
    EXPECT(init(&w, &unl, 5000000000LL, now, false, false), TG_QUOTA_CODE_OK, 5000000000LL, 0);
    EXPECT(reserve(&w, &unl, "u1", 4000000000LL, now, ttl, false), TG_QUOTA_CODE_OK, 5000000000LL,
           4000000000LL);
    EXPECT(settle(&w, &unl, "u1", 3000000000000LL, now, false), TG_QUOTA_CODE_OK, 3005000000000LL,
           0);
    world_close(&w);
}

/* 200 reservations in flight at once from three clients (three "instances"), each settled with
 * its reserved amount as soon as it is granted: the total never exceeds limit + the largest
 * reservation, and every refusal happens at reserve time. */
struct conc {
    struct world *w;
    struct tg_quota_subject s;
    int64_t amount[200];
    char id[200][16];
    struct qres res[200], set[200];
    int done, granted, blocked, settled;
    bool settle_at_once;
};
static struct conc cc;

static void on_conc_settled(void *arg, const struct tg_quota_result *res)
{
    on_q(arg, res);
    if (!res->ok || res->code != TG_QUOTA_CODE_OK)
        fail_msg("settle failed");
    cc.settled++;
}

static void on_conc_reserved(void *arg, const struct tg_quota_result *res)
{
    struct qres *q = arg;
    on_q(arg, res);
    int i = (int)(q - cc.res);
    cc.done++;
    if (!res->ok)
        fail_msg("reserve %d failed: %s", i, q->err);
    if (res->code == TG_QUOTA_CODE_BLOCKED) {
        cc.blocked++;
        return;
    }
    assert_int_equal(res->code, TG_QUOTA_CODE_OK);
    cc.granted++;
    if (cc.settle_at_once &&
        tg_quota_settle_start(cc.w->r[i % 3], cc.w->prefix, &cc.s, &cc.w->b, cc.id[i], cc.amount[i],
                              wall_ms(), 80, false, cc.w->dedupe_ms, on_conc_settled,
                              &cc.set[i]) != 0)
        fail_msg("settle %d refused", i);
}

static void run_concurrent(struct world *w, const char *user, bool settle_at_once)
{
    memset(&cc, 0, sizeof(cc));
    cc.w = w;
    cc.settle_at_once = settle_at_once;
    cc.s = subj('u', user, 5000);
    int64_t now = wall_ms();
    EXPECT(init(w, &cc.s, 0, now, false, false), TG_QUOTA_CODE_OK, 0, 0);
    srand(42);
    int64_t max_amount = 0;
    for (int i = 0; i < 200; i++) {
        cc.amount[i] = 50 + rand() % 101;
        if (cc.amount[i] > max_amount)
            max_amount = cc.amount[i];
        snprintf(cc.id[i], sizeof(cc.id[i]), "req-%d", i);
        assert_int_equal(tg_quota_reserve_start(w->r[i % 3], w->prefix, &cc.s, &w->b, cc.id[i],
                                                cc.amount[i], now, 60000, false, on_conc_reserved,
                                                &cc.res[i]),
                         0);
    }
    run_until_count(w->base, &cc.done, 200, 10000);
    if (!settle_at_once) {
        for (int i = 0; i < 200; i++)
            if (cc.res[i].r.code == TG_QUOTA_CODE_OK)
                assert_int_equal(tg_quota_settle_start(w->r[i % 3], w->prefix, &cc.s, &w->b,
                                                       cc.id[i], cc.amount[i], wall_ms(), 80, false,
                                                       w->dedupe_ms, on_conc_settled, &cc.set[i]),
                                 0);
    }
    run_until_count(w->base, &cc.settled, cc.granted, 10000);
    struct tg_quota_result p = peek(w, &cc.s, wall_ms());
    int64_t granted_sum = 0;
    for (int i = 0; i < 200; i++)
        if (cc.res[i].r.code == TG_QUOTA_CODE_OK)
            granted_sum += cc.amount[i];
    assert_int_equal(cc.granted + cc.blocked, 200);
    assert_int_equal(p.used, granted_sum);
    assert_int_equal(p.reserved, 0);
    if (p.used > 5000 + max_amount)
        fail_msg("overspent: %lld > %lld", (long long)p.used, (long long)(5000 + max_amount));
    assert_true(p.used >= 5000); /* and the quota was used up */
    assert_true(cc.granted >= 30 && cc.granted <= 60);
    print_message("concurrent (%s): %d granted, %d blocked, used %lld of 5000 (max res %lld)\n",
                  settle_at_once ? "settle at once" : "settle after", cc.granted, cc.blocked,
                  (long long)p.used, (long long)max_amount);
}

static void test_concurrent_200(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, "t3:", TG_PERIOD_WEEK, false);
    run_concurrent(&w, "carol", true);
    run_concurrent(&w, "dave", false);
    world_close(&w);
}

static void test_reservation_expiry(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, "t4:", TG_PERIOD_MONTH, false);
    struct tg_quota_subject s = subj('u', "erin", 1000);
    int64_t t = wall_ms();
    EXPECT(init(&w, &s, 0, t, false, false), TG_QUOTA_CODE_OK, 0, 0);
    EXPECT(reserve(&w, &s, "leak", 900, t, 100, false), TG_QUOTA_CODE_OK, 0, 900);
    EXPECT(reserve(&w, &s, "x", 200, t + 50, 100, false), TG_QUOTA_CODE_OK, 0, 1100);
    EXPECT(reserve(&w, &s, "y", 1, t + 60, 100, false), TG_QUOTA_CODE_BLOCKED, 0, 1100);
    /* peek counts only live reservations and changes nothing */
    EXPECT(peek(&w, &s, t + 100), TG_QUOTA_CODE_OK, 0, 200);
    char h[256], rz[256];
    key(&w, &s, "", h, sizeof(h));
    key(&w, &s, ":rz", rz, sizeof(rz));
    assert_int_equal(cmd_int(w.sync, "HEXISTS %s r:leak", h), 1);
    /* the next reserve purges the expired one */
    EXPECT(reserve(&w, &s, "y", 1, t + 100, 100, false), TG_QUOTA_CODE_OK, 0, 201);
    assert_int_equal(cmd_int(w.sync, "HEXISTS %s r:leak", h), 0);
    redisReply *r = cmd(w.sync, "ZSCORE %s r:leak", rz);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    /* the leaked request settles late (a stream longer than the TTL): its tokens count, and
     * the live reservations are untouched */
    EXPECT(settle(&w, &s, "leak", 700, t + 120, false), TG_QUOTA_CODE_OK, 700, 201);
    /* everything expires: reserved back to 0 */
    EXPECT(peek(&w, &s, t + 1000), TG_QUOTA_CODE_OK, 700, 0);
    EXPECT(reserve(&w, &s, "z", 10, t + 1000, 100, false), TG_QUOTA_CODE_OK, 700, 10);
    /* settle markers leave after the dedupe window */
    w.dedupe_ms = 50;
    EXPECT(settle(&w, &s, "z", 10, t + 1000, false), TG_QUOTA_CODE_OK, 710, 0);
    assert_int_equal(cmd_int(w.sync, "ZCARD %s", rz), 2); /* d:leak, d:z */
    EXPECT(reserve(&w, &s, "q", 1, t + 700000, 100, false), TG_QUOTA_CODE_OK, 710, 1);
    assert_int_equal(cmd_int(w.sync, "ZCARD %s", rz), 1); /* r:q */
    world_close(&w);
}

static void test_crossings_once(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, "t5:", TG_PERIOD_MONTH, false);
    int64_t t = wall_ms();
    struct tg_quota_subject s = subj('u', "frank", 1000);
    EXPECT(init(&w, &s, 0, t, false, false), TG_QUOTA_CODE_OK, 0, 0);
    static const struct {
        int line;
        int64_t tokens, used;
        unsigned crossed;
        int notice;
    } rows[] = {
        {__LINE__, 700, 700, 0, 0},
        {__LINE__, 99, 799, 0, 0},
        {__LINE__, 1, 800, TG_QUOTA_CROSSED_WARNING, TG_QUOTA_NOTICE_WARNING},
        {__LINE__, 10, 810, 0, TG_QUOTA_NOTICE_WARNING},
        {__LINE__, 189, 999, 0, TG_QUOTA_NOTICE_WARNING},
        {__LINE__, 61, 1060, TG_QUOTA_CROSSED_EXHAUSTED, TG_QUOTA_NOTICE_EXHAUSTED},
        {__LINE__, 5, 1065, 0, TG_QUOTA_NOTICE_EXHAUSTED},
    };
    for (size_t i = 0; i < TG_ARRAY_LEN(rows); i++) {
        char id[16];
        snprintf(id, sizeof(id), "c%zu", i);
        struct tg_quota_result r = settle(&w, &s, id, rows[i].tokens, t, false);
        if (r.code != TG_QUOTA_CODE_OK || r.used != rows[i].used || r.crossed != rows[i].crossed ||
            r.notice != rows[i].notice)
            fail_msg("line %d: used %lld crossed %u notice %d", rows[i].line, (long long)r.used,
                     r.crossed, r.notice);
    }
    /* both at once */
    struct tg_quota_subject g = subj('u', "grace", 1000);
    EXPECT(init(&w, &g, 0, t, false, false), TG_QUOTA_CODE_OK, 0, 0);
    struct tg_quota_result r = settle(&w, &g, "big", 1500, t, false);
    assert_int_equal(r.crossed, TG_QUOTA_CROSSED_WARNING | TG_QUOTA_CROSSED_EXHAUSTED);
    r = settle(&w, &g, "more", 1, t, false);
    assert_int_equal(r.crossed, 0);
    /* unlimited: never */
    struct tg_quota_subject u = subj('u', "heidi", -1);
    EXPECT(init(&w, &u, 0, t, false, false), TG_QUOTA_CODE_OK, 0, 0);
    r = settle(&w, &u, "huge", 1000000000, t, false);
    assert_int_equal(r.crossed, 0);
    assert_int_equal(r.notice, 0);
    /* a new period starts with fresh flags */
    struct tg_period_bounds saved = w.b;
    snprintf(w.b.key, sizeof(w.b.key), "m2999-01");
    EXPECT(init(&w, &s, 0, t, false, false), TG_QUOTA_CODE_OK, 0, 0);
    r = settle(&w, &s, "n1", 850, t, false);
    assert_int_equal(r.crossed, TG_QUOTA_CROSSED_WARNING);
    w.b = saved;
    world_close(&w);
}

/* Two requests that could both carry the pending notice: exactly one claims it; a reply that
 * could not carry it gives it back; a released or expired claim gives it back too. */
static void test_notice_claim(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, "t6:", TG_PERIOD_MONTH, false);
    int64_t t = wall_ms();
    struct tg_quota_subject s = subj('u', "ivan", 1000);
    EXPECT(init(&w, &s, 0, t, false, false), TG_QUOTA_CODE_OK, 0, 0);
    assert_int_equal(settle(&w, &s, "warm", 820, t, false).notice, TG_QUOTA_NOTICE_WARNING);

    struct qres a = {0}, b = {0};
    assert_int_equal(
        tg_quota_reserve_start(w.r[1], w.prefix, &s, &w.b, "A", 10, t, 60000, true, on_q, &a), 0);
    assert_int_equal(
        tg_quota_reserve_start(w.r[2], w.prefix, &s, &w.b, "B", 10, t, 60000, true, on_q, &b), 0);
    wait_one(&w, &a);
    wait_one(&w, &b);
    assert_true(a.r.ok && b.r.ok);
    assert_int_equal(a.r.notice + b.r.notice, TG_QUOTA_NOTICE_WARNING);
    const char *claimer = a.r.notice ? "A" : "B", *other = a.r.notice ? "B" : "A";
    /* a request that does not ask gets nothing */
    assert_int_equal(reserve(&w, &s, "C", 1, t, 60000, false).notice, 0);
    /* the claimer's reply could not carry it (tool call): back to pending */
    assert_int_equal(settle(&w, &s, claimer, 5, t, true).notice, TG_QUOTA_NOTICE_WARNING);
    /* the other one never had it: give_back changes nothing */
    assert_int_equal(settle(&w, &s, other, 5, t, true).notice, TG_QUOTA_NOTICE_WARNING);
    /* claimed again, placed: gone */
    assert_int_equal(reserve(&w, &s, "D", 1, t, 60000, true).notice, TG_QUOTA_NOTICE_WARNING);
    assert_int_equal(reserve(&w, &s, "E", 1, t, 60000, true).notice, 0);
    assert_int_equal(settle(&w, &s, "D", 1, t, false).notice, 0);
    assert_int_equal(settle(&w, &s, "E", 1, t, true).notice, 0);
    /* a released claim comes back only when asked */
    settle(&w, &s, "C", 0, t, false);
    struct tg_quota_subject s2 = subj('u', "judy", 1000);
    EXPECT(init(&w, &s2, 0, t, false, false), TG_QUOTA_CODE_OK, 0, 0);
    settle(&w, &s2, "warm", 900, t, false);
    assert_int_equal(reserve(&w, &s2, "F", 1, t, 60000, true).notice, TG_QUOTA_NOTICE_WARNING);
    assert_int_equal(release(&w, &s2, "F", true).notice, TG_QUOTA_NOTICE_WARNING);
    assert_int_equal(reserve(&w, &s2, "G", 1, t, 60000, true).notice, TG_QUOTA_NOTICE_WARNING);
    assert_int_equal(release(&w, &s2, "G", false).notice, 0);
    /* an expired claim (killed process) comes back */
    struct tg_quota_subject s3 = subj('u', "ken", 1000);
    EXPECT(init(&w, &s3, 0, t, false, false), TG_QUOTA_CODE_OK, 0, 0);
    settle(&w, &s3, "warm", 900, t, false);
    assert_int_equal(reserve(&w, &s3, "H", 1, t, 100, true).notice, TG_QUOTA_NOTICE_WARNING);
    assert_int_equal(peek(&w, &s3, t + 50).notice, 0);
    assert_int_equal(reserve(&w, &s3, "I", 1, t + 200, 100, true).notice, TG_QUOTA_NOTICE_WARNING);
    world_close(&w);
}

/* Redis lost the period: settles are logged in PRE until init rebuilds used from the ledger
 * sum (rows finished before W) plus PRE entries finished at or after W. */
static void test_init_with_pre(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, "t7:", TG_PERIOD_MONTH, false);
    int64_t t = wall_ms();
    struct tg_quota_subject s = subj('u', "lena", 10000);
    EXPECT(init(&w, &s, 1000, t, false, false), TG_QUOTA_CODE_OK, 1000, 0);
    EXPECT(reserve(&w, &s, "r1", 500, t, 60000, false), TG_QUOTA_CODE_OK, 1000, 500);
    redisReply *r = cmd(w.sync, "FLUSHALL");
    freeReplyObject(r);
    EXPECT(reserve(&w, &s, "r2", 10, t, 60000, false), TG_QUOTA_CODE_NEED_INIT, 0, 0);
    EXPECT(peek(&w, &s, t), TG_QUOTA_CODE_NEED_INIT, 0, 0);
    EXPECT(release(&w, &s, "r1", false), TG_QUOTA_CODE_NEED_INIT, 0, 0);
    int64_t W = t + 1000;
    /* finished before W: already in the ledger sum; at or after W: must be added */
    EXPECT(settle(&w, &s, "early", 300, W - 1, false), TG_QUOTA_CODE_PRE_LOGGED, 0, 0);
    EXPECT(settle(&w, &s, "edge", 40, W, false), TG_QUOTA_CODE_PRE_LOGGED, 0, 0);
    EXPECT(settle(&w, &s, "late", 2, W + 5, false), TG_QUOTA_CODE_PRE_LOGGED, 0, 0);
    /* a settle logged twice counts once */
    EXPECT(settle(&w, &s, "late", 2, W + 5, false), TG_QUOTA_CODE_PRE_LOGGED, 0, 0);
    char h[256], pre[256];
    key(&w, &s, "", h, sizeof(h));
    key(&w, &s, ":pre", pre, sizeof(pre));
    assert_int_equal(cmd_int(w.sync, "ZCARD %s", pre), 3);
    assert_int_equal(cmd_int(w.sync, "EXISTS %s", h), 0);
    /* ledger: 1000 before + the "early" row = 1300 */
    EXPECT(init(&w, &s, 1300, W, false, false), TG_QUOTA_CODE_OK, 1342, 0);
    assert_int_equal(cmd_int(w.sync, "EXISTS %s", pre), 0);
    EXPECT(init(&w, &s, 999999, W, false, false), TG_QUOTA_CODE_ALREADY_INIT, 1342, 0);
    EXPECT(reserve(&w, &s, "r3", 10, t, 60000, false), TG_QUOTA_CODE_OK, 1342, 10);
    EXPECT(settle(&w, &s, "r3", 8, t, false), TG_QUOTA_CODE_OK, 1350, 0);

    /* init reports crossings the flags passed in do not cover */
    struct tg_quota_subject m = subj('u', "mia", 1000);
    struct tg_quota_result x = init(&w, &m, 850, W, false, false);
    assert_int_equal(x.crossed, TG_QUOTA_CROSSED_WARNING);
    assert_int_equal(x.notice, TG_QUOTA_NOTICE_WARNING);
    struct tg_quota_subject n = subj('u', "nina", 1000);
    x = init(&w, &n, 850, W, true, false);
    assert_int_equal(x.crossed, 0);
    x = settle(&w, &n, "over", 200, W, false);
    assert_int_equal(x.crossed, TG_QUOTA_CROSSED_EXHAUSTED);
    struct tg_quota_subject o = subj('u', "otto", 1000);
    EXPECT(settle(&w, &o, "p1", 900, W + 1, false), TG_QUOTA_CODE_PRE_LOGGED, 0, 0);
    x = init(&w, &o, 0, W, false, false);
    assert_int_equal(x.used, 900);
    assert_int_equal(x.crossed, TG_QUOTA_CROSSED_WARNING);
    world_close(&w);
}

static void test_key_ttl(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, "t8:", TG_PERIOD_DAY, false);
    int64_t t = wall_ms();
    struct tg_quota_subject s = subj('u', "pia", 1000);
    char h[256], rz[256], pre[256];
    key(&w, &s, "", h, sizeof(h));
    key(&w, &s, ":rz", rz, sizeof(rz));
    key(&w, &s, ":pre", pre, sizeof(pre));
    int64_t want = tg_quota_key_expire_ms(&w.b);
    assert_true(want > t + 7 * 86400 * 1000LL);
    settle(&w, &s, "before-init", 5, t, false);
    assert_int_equal(cmd_int(w.sync, "PEXPIRETIME %s", pre), want);
    init(&w, &s, 0, t, false, false);
    assert_int_equal(cmd_int(w.sync, "PEXPIRETIME %s", h), want);
    reserve(&w, &s, "r", 5, t, 60000, false);
    assert_int_equal(cmd_int(w.sync, "PEXPIRETIME %s", h), want);
    assert_int_equal(cmd_int(w.sync, "PEXPIRETIME %s", rz), want);
    settle(&w, &s, "r", 5, t, false);
    assert_int_equal(cmd_int(w.sync, "PEXPIRETIME %s", h), want);
    assert_int_equal(cmd_int(w.sync, "PEXPIRETIME %s", rz), want);
    /* period none: never expires */
    assert_int_equal(tg_quota_period_bounds(t / 1000, TG_PERIOD_NONE, w.tz, &w.b), 0);
    key(&w, &s, "", h, sizeof(h));
    key(&w, &s, ":rz", rz, sizeof(rz));
    key(&w, &s, ":pre", pre, sizeof(pre));
    assert_non_null(strstr(h, ":all"));
    settle(&w, &s, "n0", 1, t, false);
    assert_int_equal(cmd_int(w.sync, "PEXPIRETIME %s", pre), -1);
    init(&w, &s, 0, t, false, false);
    reserve(&w, &s, "n1", 5, t, 60000, false);
    settle(&w, &s, "n1", 5, t, false);
    assert_int_equal(cmd_int(w.sync, "PEXPIRETIME %s", h), -1);
    assert_int_equal(cmd_int(w.sync, "PEXPIRETIME %s", rz), -1);
    world_close(&w);
}

/* The scripts run unchanged on Redis Cluster: every key of a call is in one slot. */
static void test_cluster_mode(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, "tc:", TG_PERIOD_MONTH, true);
    /* control: the server does refuse cross-slot scripts */
    redisReply *r = cmd(w.sync, "EVAL %s 2 %s %s", "return 1", "a", "b");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "CROSSSLOT"));
    freeReplyObject(r);
    int64_t t = wall_ms();
    const char *ids[] = {"alice", "a}b", "x{y}z", "team:eng", "%%"};
    for (size_t i = 0; i < TG_ARRAY_LEN(ids); i++) {
        struct tg_quota_subject s = subj(i % 2 ? 't' : 'u', ids[i], 1000);
        EXPECT(reserve(&w, &s, "r", 5, t, 60000, false), TG_QUOTA_CODE_NEED_INIT, 0, 0);
        EXPECT(settle(&w, &s, "pre", 5, t, false), TG_QUOTA_CODE_PRE_LOGGED, 0, 0);
        EXPECT(init(&w, &s, 10, t, false, false), TG_QUOTA_CODE_OK, 15, 0);
        EXPECT(reserve(&w, &s, "r", 5, t, 60000, true), TG_QUOTA_CODE_OK, 15, 5);
        EXPECT(peek(&w, &s, t), TG_QUOTA_CODE_OK, 15, 5);
        EXPECT(release(&w, &s, "r", true), TG_QUOTA_CODE_OK, 15, 0);
        EXPECT(settle(&w, &s, "s", 5, t, false), TG_QUOTA_CODE_OK, 20, 0);
        char h[256], rz[256], pre[256];
        key(&w, &s, "", h, sizeof(h));
        key(&w, &s, ":rz", rz, sizeof(rz));
        key(&w, &s, ":pre", pre, sizeof(pre));
        long long slot = cmd_int(w.sync, "CLUSTER KEYSLOT %s", h);
        assert_int_equal(cmd_int(w.sync, "CLUSTER KEYSLOT %s", rz), slot);
        assert_int_equal(cmd_int(w.sync, "CLUSTER KEYSLOT %s", pre), slot);
    }
    world_close(&w);
}

/* Redis down: the quota call fails once, fast, with the transport status. */
static void test_redis_down(void **state)
{
    (void)state;
    struct world w;
    world_open(&w, "t9:", TG_PERIOD_MONTH, false);
    struct tg_quota_subject s = subj('u', "quinn", 1000);
    reap(w.srv.pid);
    w.srv.pid = 0;
    run_for(w.base, 50);
    struct qres q = {0};
    int64_t t0 = mono_ms();
    assert_int_equal(tg_quota_reserve_start(w.r[0], w.prefix, &s, &w.b, "r", 5, wall_ms(), 60000,
                                            false, on_q, &q),
                     0);
    wait_one(&w, &q);
    assert_true(mono_ms() - t0 < 100);
    assert_false(q.r.ok);
    assert_int_equal(q.r.redis, TG_REDIS_NOT_CONNECTED);
    assert_string_equal(q.err, "not connected");
    world_close(&w);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_and_tags),          cmocka_unit_test(test_script_shas),
        cmocka_unit_test(test_reserve_settle_release), cmocka_unit_test(test_blocking_at_limit),
        cmocka_unit_test(test_concurrent_200),         cmocka_unit_test(test_reservation_expiry),
        cmocka_unit_test(test_crossings_once),         cmocka_unit_test(test_notice_claim),
        cmocka_unit_test(test_init_with_pre),          cmocka_unit_test(test_key_ttl),
        cmocka_unit_test(test_cluster_mode),           cmocka_unit_test(test_redis_down),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup_all);
}

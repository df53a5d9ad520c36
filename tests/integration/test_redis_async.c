/* Integration tests for quota/redis_async.c against real redis-server processes started here
 * (own ports, so killing, pausing and restarting them disturbs no other test). */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "quota/redis_async.h"

/* ---- redis-server processes ---- */

struct srv {
    pid_t pid;
    int port;
    char dir[64];
    const char *password;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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

static bool srv_ping(const struct srv *s)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    bool ok = false;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        redisReply *r =
            s->password ? redisCommand(c, "AUTH %s", s->password) : redisCommand(c, "PING");
        ok = r && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

/* Starts redis-server on s->port; returns true once it answers. */
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
               "--appendonly", "no", "--dir", s->dir, "--enable-debug-command", "yes",
               "--requirepass", s->password ? s->password : "", NULL);
        _exit(127);
    }
    s->pid = pid;
    remember_pid(pid);
    int64_t deadline = mono_ms() + 10000;
    while (mono_ms() < deadline) {
        if (srv_ping(s))
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
    snprintf(s->dir, sizeof(s->dir), "/tmp/tg-redis-async-XXXXXX");
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

/* Restart on the same port (the client must find it again). */
static void srv_restart_same_port(struct srv *s)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        if (exec_server(s))
            return;
        usleep(100000);
    }
    fail_msg("redis-server did not restart on port %d", s->port);
}

static void srv_kill(struct srv *s)
{
    if (s->pid > 0) {
        reap(s->pid);
        s->pid = 0;
    }
}

static void srv_stop(struct srv *s)
{
    srv_kill(s);
    if (s->dir[0]) {
        remove_dir(s->dir);
        s->dir[0] = '\0';
    }
}

/* ---- event loop helpers ---- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until *flag (when flag != NULL) or timeout_ms passed. Returns *flag. */
static bool run_until(struct event_base *base, const bool *flag, int timeout_ms)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 5000};
    event_add(tick, &tv);
    int64_t deadline = mono_ms() + timeout_ms;
    while ((flag == NULL || !*flag) && mono_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return flag ? *flag : true;
}

static bool is_ready_flag;
static void on_state(void *arg, bool ready)
{
    int *changes = arg;
    if (changes)
        (*changes)++;
    is_ready_flag = ready;
}

static struct tg_redis *client(struct event_base *base, const struct srv *s, int timeout_ms,
                               int *state_changes)
{
    struct tg_redis_opts o = {.host = "127.0.0.1",
                              .port = s->port,
                              .password = s->password,
                              .timeout_ms = timeout_ms,
                              .reconnect_min_ms = 20,
                              .reconnect_max_ms = 200,
                              .on_state = on_state,
                              .state_arg = state_changes};
    struct tg_redis *r = tg_redis_create(base, &o);
    assert_non_null(r);
    return r;
}

static void wait_ready(struct event_base *base, struct tg_redis *r, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (!tg_redis_is_ready(r) && mono_ms() < deadline)
        run_until(base, NULL, 5);
    if (!tg_redis_is_ready(r))
        fail_msg("client not ready: %s", tg_redis_last_error(r));
}

/* One record per command: how often its callback ran and with what. */
struct rec {
    int calls;
    enum tg_redis_status st;
    int type;
    long long integer;
    char str[64];
    int64_t done_ms;
};

static void on_rec(void *arg, const redisReply *reply, enum tg_redis_status st)
{
    struct rec *r = arg;
    r->calls++;
    r->st = st;
    r->done_ms = mono_ms();
    if (reply) {
        r->type = reply->type;
        r->integer = reply->integer;
        if (reply->str)
            snprintf(r->str, sizeof(r->str), "%s", reply->str);
    }
}

static bool all_called(const struct rec *recs, int n)
{
    for (int i = 0; i < n; i++)
        if (recs[i].calls == 0)
            return false;
    return true;
}

static void run_until_all(struct event_base *base, const struct rec *recs, int n, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    while (!all_called(recs, n) && mono_ms() < deadline)
        run_until(base, NULL, 5);
    if (!all_called(recs, n))
        fail_msg("callbacks missing after %d ms", timeout_ms);
}

static void assert_once(const struct rec *recs, int n)
{
    for (int i = 0; i < n; i++)
        if (recs[i].calls != 1)
            fail_msg("command %d: callback ran %d times", i, recs[i].calls);
}

/* ---- tests ---- */

static void test_basic_and_pipelining(void **state)
{
    (void)state;
    struct srv s = {0};
    srv_start(&s);
    struct event_base *base = event_base_new();
    int changes = 0;
    struct tg_redis *r = client(base, &s, 1000, &changes);
    wait_ready(base, r, 3000);
    assert_int_equal(changes, 1);
    assert_true(is_ready_flag);

    enum { N = 2000 };
    static struct rec recs[N];
    memset(recs, 0, sizeof(recs));
    for (int i = 0; i < N; i++)
        assert_int_equal(tg_redis_command(r, on_rec, &recs[i], "INCR %s", "counter"), 0);
    run_until_all(base, recs, N, 10000);
    assert_once(recs, N);
    for (int i = 0; i < N; i++)
        if (recs[i].st != TG_REDIS_OK || recs[i].integer != i + 1)
            fail_msg("reply %d out of order: %lld", i, recs[i].integer);

    struct rec a[4];
    memset(a, 0, sizeof(a));
    const char *argv[] = {"SET", "bin", "a\0b"};
    size_t lens[] = {3, 3, 3};
    assert_int_equal(tg_redis_command_argv(r, on_rec, &a[0], 3, argv, lens), 0);
    assert_int_equal(tg_redis_command(r, on_rec, &a[1], "STRLEN bin"), 0);
    assert_int_equal(tg_redis_command(r, on_rec, &a[2], "NOSUCHCOMMAND x"), 0);
    assert_int_equal(tg_redis_command(r, on_rec, &a[3], "GET %s", "counter"), 0);
    run_until_all(base, a, 4, 3000);
    assert_once(a, 4);
    assert_int_equal(a[1].integer, 3);
    assert_int_equal(a[2].st, TG_REDIS_OK);
    assert_int_equal(a[2].type, REDIS_REPLY_ERROR);
    assert_string_equal(a[3].str, "2000");

    /* invalid format / arguments: -1, no callback */
    assert_int_equal(tg_redis_command(r, on_rec, &a[0], "GET %q"), -1);
    assert_int_equal(tg_redis_command_argv(r, on_rec, &a[0], 0, argv, NULL), -1);

    struct tg_redis_stats st;
    tg_redis_get_stats(r, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.timeouts, 0);
    tg_redis_destroy(r);
    event_base_free(base);
    srv_stop(&s);
}

static struct tg_redis *reentrant_client;
static int reentrant_calls;
static long long reentrant_last;
static void on_reentrant(void *arg, const redisReply *reply, enum tg_redis_status st)
{
    (void)arg;
    reentrant_calls++;
    if (st != TG_REDIS_OK)
        return;
    reentrant_last = reply->integer;
    /* issue the next command from inside the callback */
    if (reply->integer < 50 &&
        tg_redis_command(reentrant_client, on_reentrant, NULL, "INCR reentrant") != 0)
        fail_msg("command from callback refused");
}

static void test_commands_from_callbacks(void **state)
{
    (void)state;
    struct srv s = {0};
    srv_start(&s);
    struct event_base *base = event_base_new();
    reentrant_client = client(base, &s, 1000, NULL);
    wait_ready(base, reentrant_client, 3000);
    reentrant_calls = 0;
    assert_int_equal(tg_redis_command(reentrant_client, on_reentrant, NULL, "INCR reentrant"), 0);
    int64_t deadline = mono_ms() + 5000;
    while (reentrant_last < 50 && mono_ms() < deadline)
        run_until(base, NULL, 5);
    assert_int_equal(reentrant_calls, 50);
    assert_int_equal(reentrant_last, 50);
    tg_redis_destroy(reentrant_client);
    event_base_free(base);
    srv_stop(&s);
}

/* Before the handshake finished, commands fail with NOT_CONNECTED on the next loop turn. */
static void test_not_connected_fails_fast(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct srv none = {.port = free_port()}; /* nothing listens there */
    struct tg_redis *r = client(base, &none, 1000, NULL);
    assert_false(tg_redis_is_ready(r));
    struct rec rec[20];
    memset(rec, 0, sizeof(rec));
    int64_t t0 = mono_ms();
    for (int i = 0; i < 20; i++)
        assert_int_equal(tg_redis_command(r, on_rec, &rec[i], "PING"), 0);
    assert_int_equal(rec[0].calls, 0); /* never inside the issuing call */
    run_until_all(base, rec, 20, 1000);
    assert_once(rec, 20);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(rec[i].st, TG_REDIS_NOT_CONNECTED);
        assert_true(rec[i].done_ms - t0 < 100);
    }
    run_until(base, NULL, 100);
    assert_false(tg_redis_is_ready(r));
    assert_true(tg_redis_last_error(r)[0] != '\0');
    struct tg_redis_stats st;
    tg_redis_get_stats(r, &st);
    assert_int_equal(st.failed_fast, 20);
    tg_redis_destroy(r);
    event_base_free(base);
}

/* A command outliving timeout_ms fails every command in flight, exactly once, with TIMEOUT;
 * the client reconnects by itself. */
static void test_timeout_debug_sleep(void **state)
{
    (void)state;
    struct srv s = {0};
    srv_start(&s);
    struct event_base *base = event_base_new();
    int changes = 0;
    struct tg_redis *r = client(base, &s, 150, &changes);
    wait_ready(base, r, 3000);
    struct rec rec[12];
    memset(rec, 0, sizeof(rec));
    int64_t t0 = mono_ms();
    assert_int_equal(tg_redis_command(r, on_rec, &rec[0], "DEBUG SLEEP 0.6"), 0);
    for (int i = 1; i < 12; i++)
        assert_int_equal(tg_redis_command(r, on_rec, &rec[i], "INCR after"), 0);
    run_until_all(base, rec, 12, 3000);
    int64_t took = mono_ms() - t0;
    assert_once(rec, 12);
    for (int i = 0; i < 12; i++)
        if (rec[i].st != TG_REDIS_TIMEOUT)
            fail_msg("command %d: %s", i, tg_redis_status_name(rec[i].st));
    assert_true(took >= 140 && took < 450);
    assert_false(tg_redis_is_ready(r));
    assert_int_equal(changes, 2); /* ready, then lost */
    /* nothing more arrives later (the dropped connection's replies are never delivered) */
    run_until(base, NULL, 700);
    assert_once(rec, 12);
    wait_ready(base, r, 3000);
    struct rec ok;
    memset(&ok, 0, sizeof(ok));
    assert_int_equal(tg_redis_command(r, on_rec, &ok, "PING"), 0);
    run_until_all(base, &ok, 1, 2000);
    assert_int_equal(ok.st, TG_REDIS_OK);
    struct tg_redis_stats st;
    tg_redis_get_stats(r, &st);
    assert_true(st.timeouts >= 1);
    assert_true(st.connects >= 2);
    tg_redis_destroy(r);
    event_base_free(base);
    srv_stop(&s);
}

/* A paused server (SIGSTOP): commands time out, reconnect attempts time out in the handshake,
 * commands issued meanwhile fail at once; after SIGCONT the client is back. */
static void test_paused_server(void **state)
{
    (void)state;
    struct srv s = {0};
    srv_start(&s);
    struct event_base *base = event_base_new();
    struct tg_redis *r = client(base, &s, 100, NULL);
    wait_ready(base, r, 3000);
    kill(s.pid, SIGSTOP);
    struct rec rec[50];
    memset(rec, 0, sizeof(rec));
    for (int i = 0; i < 50; i++)
        assert_int_equal(tg_redis_command(r, on_rec, &rec[i], "PING"), 0);
    run_until_all(base, rec, 50, 2000);
    assert_once(rec, 50);
    for (int i = 0; i < 50; i++)
        assert_int_equal(rec[i].st, TG_REDIS_TIMEOUT);
    /* while paused: several handshake time-outs, never ready; commands fail fast */
    for (int round = 0; round < 10; round++) {
        struct rec fast;
        memset(&fast, 0, sizeof(fast));
        int64_t t0 = mono_ms();
        assert_int_equal(tg_redis_command(r, on_rec, &fast, "PING"), 0);
        run_until_all(base, &fast, 1, 1000);
        assert_int_equal(fast.st, TG_REDIS_NOT_CONNECTED);
        assert_true(fast.done_ms - t0 < 100);
        run_until(base, NULL, 60);
    }
    assert_false(tg_redis_is_ready(r));
    struct tg_redis_stats st;
    tg_redis_get_stats(r, &st);
    assert_true(st.timeouts >= 2);
    assert_non_null(strstr(tg_redis_last_error(r), "timed out"));
    kill(s.pid, SIGCONT);
    wait_ready(base, r, 3000);
    struct rec ok;
    memset(&ok, 0, sizeof(ok));
    assert_int_equal(tg_redis_command(r, on_rec, &ok, "PING"), 0);
    run_until_all(base, &ok, 1, 2000);
    assert_int_equal(ok.st, TG_REDIS_OK);
    assert_string_equal(ok.str, "PONG");
    tg_redis_destroy(r);
    event_base_free(base);
    srv_stop(&s);
}

/* kill -9 + restart: in-flight commands fail DISCONNECTED, commands while down fail within
 * 100 ms, and the client reconnects when the server is back. */
static void test_reconnect_after_restart(void **state)
{
    (void)state;
    struct srv s = {0};
    srv_start(&s);
    struct event_base *base = event_base_new();
    int changes = 0;
    struct tg_redis *r = client(base, &s, 2000, &changes);
    wait_ready(base, r, 3000);
    struct rec blocked[5];
    memset(blocked, 0, sizeof(blocked));
    assert_int_equal(tg_redis_command(r, on_rec, &blocked[0], "BLPOP nothing 10"), 0);
    for (int i = 1; i < 5; i++)
        assert_int_equal(tg_redis_command(r, on_rec, &blocked[i], "PING"), 0);
    run_until(base, NULL, 50);
    srv_kill(&s);
    run_until_all(base, blocked, 5, 1000);
    assert_once(blocked, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(blocked[i].st, TG_REDIS_DISCONNECTED);
    assert_false(tg_redis_is_ready(r));
    assert_false(is_ready_flag);
    for (int round = 0; round < 5; round++) {
        struct rec fast;
        memset(&fast, 0, sizeof(fast));
        int64_t t0 = mono_ms();
        assert_int_equal(tg_redis_command(r, on_rec, &fast, "PING"), 0);
        run_until_all(base, &fast, 1, 1000);
        assert_int_equal(fast.st, TG_REDIS_NOT_CONNECTED);
        assert_true(fast.done_ms - t0 < 100);
        run_until(base, NULL, 50);
    }
    srv_restart_same_port(&s);
    wait_ready(base, r, 3000);
    assert_true(is_ready_flag);
    struct rec ok;
    memset(&ok, 0, sizeof(ok));
    assert_int_equal(tg_redis_command(r, on_rec, &ok, "SET k v"), 0);
    run_until_all(base, &ok, 1, 2000);
    assert_int_equal(ok.st, TG_REDIS_OK);
    struct tg_redis_stats st;
    tg_redis_get_stats(r, &st);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.disconnects, 1);
    tg_redis_destroy(r);
    event_base_free(base);
    srv_stop(&s);
}

/* destroy fails everything exactly once: commands in flight, commands queued to fail. */
static void test_destroy_fails_pending(void **state)
{
    (void)state;
    struct srv s = {0};
    srv_start(&s);
    struct event_base *base = event_base_new();
    struct tg_redis *r = client(base, &s, 1000, NULL);
    wait_ready(base, r, 3000);
    enum { N = 300 };
    static struct rec recs[N];
    memset(recs, 0, sizeof(recs));
    for (int i = 0; i < N; i++)
        assert_int_equal(tg_redis_command(r, on_rec, &recs[i], "PING"), 0);
    tg_redis_destroy(r);
    assert_once(recs, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(recs[i].st, TG_REDIS_SHUTDOWN);

    /* not connected: queued failures are delivered by destroy */
    struct srv none = {.port = free_port()};
    r = client(base, &none, 1000, NULL);
    struct rec q[3];
    memset(q, 0, sizeof(q));
    for (int i = 0; i < 3; i++)
        assert_int_equal(tg_redis_command(r, on_rec, &q[i], "PING"), 0);
    tg_redis_destroy(r);
    assert_once(q, 3);
    assert_int_equal(q[0].st, TG_REDIS_NOT_CONNECTED);
    tg_redis_destroy(NULL);
    run_until(base, NULL, 50);
    assert_once(q, 3);
    event_base_free(base);
    srv_stop(&s);
}

/* destroy from inside a callback (reply, failure, timeout): no use after free (ASan), every
 * other command still gets exactly one callback, and commands issued from those callbacks are
 * failed too. */
struct destroyer {
    struct tg_redis *r;
    struct rec *recs;
    int n, at;
    struct rec extra;
};
static struct destroyer dz;

static void on_extra(void *arg, const redisReply *reply, enum tg_redis_status st)
{
    on_rec(arg, reply, st);
}

static void on_destroying(void *arg, const redisReply *reply, enum tg_redis_status st)
{
    struct rec *rec = arg;
    on_rec(arg, reply, st);
    if (rec == &dz.recs[dz.at]) {
        tg_redis_destroy(dz.r);
        tg_redis_destroy(dz.r); /* twice is harmless while it unwinds */
    } else if (rec == &dz.recs[dz.at + 1]) {
        /* issued while the client is being destroyed: fails with SHUTDOWN */
        if (tg_redis_command(dz.r, on_extra, &dz.extra, "PING") != 0)
            fail_msg("refused");
    }
}

static void test_destroy_inside_callback(void **state)
{
    (void)state;
    struct srv s = {0};
    srv_start(&s);
    struct event_base *base = event_base_new();
    static struct rec recs[100];
    /* 1: on a reply */
    memset(&dz, 0, sizeof(dz));
    memset(recs, 0, sizeof(recs));
    dz.r = client(base, &s, 1000, NULL);
    dz.recs = recs;
    dz.n = 100;
    dz.at = 10;
    wait_ready(base, dz.r, 3000);
    for (int i = 0; i < 100; i++)
        assert_int_equal(tg_redis_command(dz.r, on_destroying, &recs[i], "PING"), 0);
    run_until_all(base, recs, 100, 3000);
    assert_once(recs, 100);
    for (int i = 0; i <= 10; i++)
        assert_int_equal(recs[i].st, TG_REDIS_OK);
    for (int i = 11; i < 100; i++)
        assert_int_equal(recs[i].st, TG_REDIS_SHUTDOWN);
    run_until(base, NULL, 50);
    assert_int_equal(dz.extra.calls, 1);
    assert_int_equal(dz.extra.st, TG_REDIS_SHUTDOWN);

    /* 2: on a time-out (the callbacks run inside the drop) */
    memset(&dz, 0, sizeof(dz));
    memset(recs, 0, sizeof(recs));
    dz.r = client(base, &s, 100, NULL);
    dz.recs = recs;
    dz.at = 3;
    wait_ready(base, dz.r, 3000);
    assert_int_equal(tg_redis_command(dz.r, on_destroying, &recs[0], "DEBUG SLEEP 0.3"), 0);
    for (int i = 1; i < 20; i++)
        assert_int_equal(tg_redis_command(dz.r, on_destroying, &recs[i], "PING"), 0);
    run_until_all(base, recs, 20, 3000);
    assert_once(recs, 20);
    for (int i = 0; i < 20; i++) /* all failed by the time-out, before the destroy */
        assert_int_equal(recs[i].st, TG_REDIS_TIMEOUT);
    run_until(base, NULL, 400);
    assert_int_equal(dz.extra.calls, 1);
    assert_int_equal(dz.extra.st, TG_REDIS_SHUTDOWN);

    /* 3: on a fail-fast callback */
    memset(&dz, 0, sizeof(dz));
    memset(recs, 0, sizeof(recs));
    struct srv none = {.port = free_port()};
    dz.r = client(base, &none, 100, NULL);
    dz.recs = recs;
    dz.at = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(tg_redis_command(dz.r, on_destroying, &recs[i], "PING"), 0);
    run_until_all(base, recs, 5, 3000);
    assert_once(recs, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(recs[i].st, TG_REDIS_NOT_CONNECTED);
    run_until(base, NULL, 50);
    assert_int_equal(dz.extra.calls, 1);
    assert_int_equal(dz.extra.st, TG_REDIS_SHUTDOWN);
    event_base_free(base);
    srv_stop(&s);
}

/* EVALSHA falls back to EVAL when the script cache was flushed. */
static void test_evalsha_noscript(void **state)
{
    (void)state;
    static const char src[] = "return {tonumber(ARGV[1]) + 1, KEYS[1]}";
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)src, strlen(src), md);
    char sha[41];
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(sha + 2 * i, 3, "%02x", md[i]);
    struct tg_redis_script script = {"test", sha, strlen(src), src};

    struct srv s = {0};
    srv_start(&s);
    struct event_base *base = event_base_new();
    struct tg_redis *r = client(base, &s, 1000, NULL);
    wait_ready(base, r, 3000);
    const char *argv[] = {"some{key}", "41"};
    struct rec rec[3];
    memset(rec, 0, sizeof(rec));
    assert_int_equal(tg_redis_evalsha(r, &script, 1, 2, argv, NULL, on_rec, &rec[0]), 0);
    assert_int_equal(tg_redis_evalsha(r, &script, 1, 2, argv, NULL, on_rec, &rec[1]), 0);
    run_until_all(base, rec, 2, 3000);
    assert_once(rec, 2);
    struct tg_redis_stats st;
    tg_redis_get_stats(r, &st);
    assert_int_equal(st.noscript, 2); /* both were sent before the first EVAL loaded it */
    assert_int_equal(rec[0].type, REDIS_REPLY_ARRAY);
    assert_int_equal(rec[0].st, TG_REDIS_OK);
    memset(rec, 0, sizeof(rec));
    assert_int_equal(tg_redis_evalsha(r, &script, 1, 2, argv, NULL, on_rec, &rec[0]), 0);
    assert_int_equal(tg_redis_command(r, on_rec, &rec[1], "SCRIPT FLUSH"), 0);
    assert_int_equal(tg_redis_evalsha(r, &script, 1, 2, argv, NULL, on_rec, &rec[2]), 0);
    run_until_all(base, rec, 3, 3000);
    assert_once(rec, 3);
    tg_redis_get_stats(r, &st);
    assert_int_equal(st.noscript, 3);
    assert_int_equal(rec[2].type, REDIS_REPLY_ARRAY);
    /* a script error is an error reply, not a retry */
    struct tg_redis_script bad = {"bad", "0000000000000000000000000000000000000000", 9,
                                  "return x("};
    memset(rec, 0, sizeof(rec));
    assert_int_equal(tg_redis_evalsha(r, &bad, 0, 0, NULL, NULL, on_rec, &rec[0]), 0);
    run_until_all(base, rec, 1, 3000);
    assert_int_equal(rec[0].type, REDIS_REPLY_ERROR);
    assert_int_equal(tg_redis_evalsha(r, &bad, 2, 1, argv, NULL, on_rec, &rec[0]), -1);
    tg_redis_destroy(r);
    event_base_free(base);
    srv_stop(&s);
}

static void test_auth_and_select(void **state)
{
    (void)state;
    struct srv s = {.password = "s3cret"};
    srv_start(&s);
    struct event_base *base = event_base_new();
    struct tg_redis_opts o = {.host = "127.0.0.1",
                              .port = s.port,
                              .password = "s3cret",
                              .db = 3,
                              .timeout_ms = 1000,
                              .reconnect_min_ms = 20,
                              .reconnect_max_ms = 100};
    struct tg_redis *r = tg_redis_create(base, &o);
    assert_non_null(r);
    wait_ready(base, r, 3000);
    struct rec rec;
    memset(&rec, 0, sizeof(rec));
    assert_int_equal(tg_redis_command(r, on_rec, &rec, "SET indb3 yes"), 0);
    run_until_all(base, &rec, 1, 2000);
    assert_int_equal(rec.st, TG_REDIS_OK);
    tg_redis_destroy(r);

    redisContext *c = redisConnect("127.0.0.1", s.port);
    redisReply *rp = redisCommand(c, "AUTH s3cret");
    freeReplyObject(rp);
    rp = redisCommand(c, "SELECT 3");
    freeReplyObject(rp);
    rp = redisCommand(c, "GET indb3");
    assert_int_equal(rp->type, REDIS_REPLY_STRING);
    assert_string_equal(rp->str, "yes");
    freeReplyObject(rp);
    redisFree(c);

    o.password = "wrong";
    r = tg_redis_create(base, &o);
    assert_non_null(r);
    run_until(base, NULL, 300);
    assert_false(tg_redis_is_ready(r));
    assert_non_null(strstr(tg_redis_last_error(r), "AUTH"));
    tg_redis_destroy(r);

    struct tg_redis_opts bad = o;
    bad.timeout_ms = 0;
    assert_null(tg_redis_create(base, &bad));
    bad = o;
    bad.host = NULL;
    assert_null(tg_redis_create(base, &bad));
    bad = o;
    bad.port = 70000;
    assert_null(tg_redis_create(base, &bad));
    event_base_free(base);
    srv_stop(&s);
}

/* ---- pub/sub ---- */

struct subrec {
    int subscribed;
    int messages;
    char last[64];
    struct tg_redis *self;
    bool destroy_on_message;
};

static void on_message(void *arg, const char *payload, size_t len)
{
    struct subrec *sr = arg;
    sr->messages++;
    snprintf(sr->last, sizeof(sr->last), "%.*s", (int)len, payload);
    if (sr->destroy_on_message)
        tg_redis_destroy(sr->self);
}

static void on_subscribed(void *arg)
{
    struct subrec *sr = arg;
    sr->subscribed++;
}

static void publish(struct event_base *base, struct tg_redis *pub, const char *msg)
{
    struct rec rec;
    memset(&rec, 0, sizeof(rec));
    assert_int_equal(tg_redis_command(pub, on_rec, &rec, "PUBLISH tg-inval %s", msg), 0);
    run_until_all(base, &rec, 1, 2000);
    assert_int_equal(rec.st, TG_REDIS_OK);
}

static void test_subscriber(void **state)
{
    (void)state;
    struct srv s = {0};
    srv_start(&s);
    struct event_base *base = event_base_new();
    struct tg_redis_opts o = {.host = "127.0.0.1",
                              .port = s.port,
                              .timeout_ms = 500,
                              .reconnect_min_ms = 20,
                              .reconnect_max_ms = 100};
    struct subrec sr;
    memset(&sr, 0, sizeof(sr));
    struct tg_redis *sub = tg_redis_subscribe(base, &o, "tg-inval", on_message, on_subscribed, &sr);
    assert_non_null(sub);
    struct tg_redis *pub = tg_redis_create(base, &o);
    wait_ready(base, sub, 3000);
    wait_ready(base, pub, 3000);
    assert_int_equal(sr.subscribed, 1);
    struct rec rec;
    assert_int_equal(tg_redis_command(sub, on_rec, &rec, "PING"), -1);
    publish(base, pub, "user:alice");
    int64_t deadline = mono_ms() + 2000;
    while (sr.messages < 1 && mono_ms() < deadline)
        run_until(base, NULL, 5);
    assert_int_equal(sr.messages, 1);
    assert_string_equal(sr.last, "user:alice");

    /* server restart: resubscribed callback, then messages flow again */
    srv_kill(&s);
    run_until(base, NULL, 100);
    assert_false(tg_redis_is_ready(sub));
    srv_restart_same_port(&s);
    deadline = mono_ms() + 3000;
    while ((sr.subscribed < 2 || !tg_redis_is_ready(pub)) && mono_ms() < deadline)
        run_until(base, NULL, 5);
    assert_int_equal(sr.subscribed, 2);
    publish(base, pub, "key:42");
    deadline = mono_ms() + 2000;
    while (sr.messages < 2 && mono_ms() < deadline)
        run_until(base, NULL, 5);
    assert_int_equal(sr.messages, 2);
    assert_string_equal(sr.last, "key:42");

    /* destroy from inside on_message */
    sr.self = sub;
    sr.destroy_on_message = true;
    publish(base, pub, "bye");
    deadline = mono_ms() + 2000;
    while (sr.messages < 3 && mono_ms() < deadline)
        run_until(base, NULL, 5);
    assert_int_equal(sr.messages, 3);
    publish(base, pub, "after");
    run_until(base, NULL, 100);
    assert_int_equal(sr.messages, 3);
    tg_redis_destroy(pub);

    /* a subscriber destroyed while connecting, and one to a dead port */
    struct subrec s2;
    memset(&s2, 0, sizeof(s2));
    sub = tg_redis_subscribe(base, &o, "tg-inval", on_message, on_subscribed, &s2);
    tg_redis_destroy(sub);
    struct tg_redis_opts dead = o;
    dead.port = free_port();
    sub = tg_redis_subscribe(base, &dead, "tg-inval", on_message, on_subscribed, &s2);
    run_until(base, NULL, 100);
    assert_false(tg_redis_is_ready(sub));
    tg_redis_destroy(sub);
    assert_int_equal(s2.subscribed, 0);
    assert_null(tg_redis_subscribe(base, &o, "", on_message, NULL, &s2));
    event_base_free(base);
    srv_stop(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_and_pipelining),
        cmocka_unit_test(test_commands_from_callbacks),
        cmocka_unit_test(test_not_connected_fails_fast),
        cmocka_unit_test(test_timeout_debug_sleep),
        cmocka_unit_test(test_paused_server),
        cmocka_unit_test(test_reconnect_after_restart),
        cmocka_unit_test(test_destroy_fails_pending),
        cmocka_unit_test(test_destroy_inside_callback),
        cmocka_unit_test(test_evalsha_noscript),
        cmocka_unit_test(test_auth_and_select),
        cmocka_unit_test(test_subscriber),
    };
    return cmocka_run_group_tests(tests, NULL, cleanup_all);
}

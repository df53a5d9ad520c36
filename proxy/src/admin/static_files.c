/* static_files.c: the dashboard's plain files, read-only, no directory listing, no "..". */
#include "admin/static_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/reply.h"
#include "http/server.h"
#include "http/worker.h"

#ifndef TG_DEFAULT_DASHBOARD_DIR
#define TG_DEFAULT_DASHBOARD_DIR "dashboard-static"
#endif

#define MAX_FILE_BYTES (8 * 1024 * 1024)

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".map", "application/json"},
        {".woff2", "font/woff2"},
        {".webp", "image/webp"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(path, '.');
    if (dot != NULL)
        for (size_t i = 0; i < TG_ARRAY_LEN(types); i++)
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

static bool method_is(const struct tg_conn *c, const char *m)
{
    size_t n = strlen(m);
    return c->head.method_len == n && memcmp(c->head.method, m, n) == 0;
}

void tg_static_dispatch(struct tg_conn *c)
{
    if (!method_is(c, "GET") && !method_is(c, "HEAD")) {
        tg_conn_add_header(c, "Allow", "GET, HEAD");
        tg_reply_error(c, 405, "The dashboard is read-only.", "invalid_request_error",
                       "method_not_allowed", NULL);
        return;
    }
    if ((c->path_len == 1 && c->path[0] == '/') ||
        (c->path_len == 10 && memcmp(c->path, "/dashboard", 10) == 0)) {
        tg_conn_add_header(c, "Location", "/dashboard/");
        tg_conn_reply(c, 302, "text/plain; charset=utf-8", "", 0);
        return;
    }
    const char *rel = c->path + 10; /* after "/dashboard" */
    size_t rel_len = c->path_len - 10;
    char name[512];
    if (rel_len <= 1) {
        snprintf(name, sizeof(name), "index.html");
    } else {
        if (rel_len - 1 >= sizeof(name)) {
            tg_reply_error(c, 404, "Not found.", "invalid_request_error", "not_found", NULL);
            return;
        }
        memcpy(name, rel + 1, rel_len - 1);
        name[rel_len - 1] = '\0';
    }
    /* plain names only: letters, digits, '-', '_', '.', '/' and never ".." */
    for (const char *p = name; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '/';
        if (!ok || (p[0] == '.' && p[1] == '.')) {
            tg_reply_error(c, 404, "Not found.", "invalid_request_error", "not_found", NULL);
            return;
        }
    }
    const char *dir =
        tg_app->cfg.dashboard_dir[0] ? tg_app->cfg.dashboard_dir : TG_DEFAULT_DASHBOARD_DIR;
    char path[1600];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE_BYTES) {
        if (fd >= 0)
            close(fd);
        tg_reply_error(c, 404, "Not found.", "invalid_request_error", "not_found", NULL);
        return;
    }
    /* dashboard files are small: read on the loop from the page cache */
    char *buf = malloc((size_t)st.st_size + 1);
    ssize_t got = buf ? 0 : -1;
    while (got >= 0 && got < st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)(st.st_size - got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            got = -1;
            break;
        }
        got += n;
    }
    close(fd);
    if (got != st.st_size) {
        free(buf);
        tg_reply_error(c, 500, "Cannot read the file.", "server_error", "internal", NULL);
        return;
    }
    tg_conn_add_header(c, "Cache-Control", "no-cache");
    tg_conn_add_header(c, "X-Content-Type-Options", "nosniff");
    /* the dashboard has no inline script or style: nothing but its own files runs */
    tg_conn_add_header(c, "Content-Security-Policy",
                       "default-src 'self'; frame-ancestors 'none'; base-uri 'none'");
    tg_conn_reply(c, 200, content_type(name), buf, (size_t)got);
    free(buf);
}

/* migrate.c: reads schema/NNN_name.sql, applies the new ones in order, records them in
 * schema_migrations. */
#include "db/migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#ifndef TG_DEFAULT_SCHEMA_DIR
#define TG_DEFAULT_SCHEMA_DIR "schema"
#endif

/* Session advisory lock held while migrating: 'tgmigrat' in ASCII. */
#define MIGRATE_LOCK_KEY    "8387793130475381108"
#define MAX_MIGRATION_BYTES (64u * 1024u * 1024u)
#define MAX_VERSION_DIGITS  9

struct migration {
    int version;     /* the leading number of the file name */
    char *file;      /* "001_ledger.sql"; owned */
    char *sql;       /* the file's contents, NUL-terminated; owned */
    size_t len;      /* bytes in sql */
    char sha256[65]; /* lowercase hex SHA-256 of the contents */
    bool is_applied; /* found in schema_migrations */
    char applied_at[64];
};

struct migration_set {
    struct migration *items;
    size_t n;
    size_t cap;
};

TG_PRINTF(3, 4) static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* One line: libpq messages carry newlines and tabs. */
    size_t w = 0;
    bool in_space = false;
    for (size_t r = 0; err[r] != '\0'; r++) {
        unsigned char c = (unsigned char)err[r];
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            in_space = true;
            continue;
        }
        if (in_space && w > 0)
            err[w++] = ' ';
        in_space = false;
        err[w++] = (char)c;
    }
    err[w] = '\0';
}

static void set_free(struct migration_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->items[i].file);
        free(set->items[i].sql);
    }
    free(set->items);
    set->items = NULL;
    set->n = set->cap = 0;
}

/* "001_name.sql" -> 1; -1 when the name is not <digits>_<[A-Za-z0-9_-]+>.sql. */
static int parse_file_name(const char *name)
{
    size_t len = strlen(name);
    size_t digits = 0;
    long version = 0;

    while (isdigit((unsigned char)name[digits])) {
        version = version * 10 + (name[digits] - '0');
        digits++;
        if (digits > MAX_VERSION_DIGITS)
            return -1;
    }
    if (digits == 0 || name[digits] != '_' || len < digits + 2 + 4)
        return -1;
    if (strcmp(name + len - 4, ".sql") != 0)
        return -1;
    for (size_t i = digits + 1; i < len - 4; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '_' && c != '-')
            return -1;
    }
    return version > 0 ? (int)version : -1;
}

static int sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    static const char hex[] = "0123456789abcdef";

    if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
        return -1;
    for (unsigned int i = 0; i < md_len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[64] = '\0';
    return 0;
}

static int read_file(const char *path, char **data_out, size_t *len_out, char *err, size_t errlen)
{
    FILE *f = NULL;
    char *data = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;

    f = fopen(path, "rb");
    if (f == NULL) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        if (cap - len < 65536) {
            size_t ncap = cap == 0 ? 65536 : cap * 2;
            if (ncap > MAX_MIGRATION_BYTES + 65536) {
                set_err(err, errlen, "%s: larger than %u bytes", path, MAX_MIGRATION_BYTES);
                goto out;
            }
            char *ndata = realloc(data, ncap + 1);
            if (ndata == NULL) {
                set_err(err, errlen, "%s: out of memory", path);
                goto out;
            }
            data = ndata;
            cap = ncap;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                set_err(err, errlen, "%s: read error", path);
                goto out;
            }
            break;
        }
    }
    data[len] = '\0';
    if (memchr(data, '\0', len) != NULL) {
        set_err(err, errlen, "%s: contains a NUL byte (not SQL text)", path);
        goto out;
    }
    *data_out = data;
    *len_out = len;
    data = NULL;
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    free(data);
    return rc;
}

static int by_version(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* Reads every migration of dir into set, sorted by version. 0, or -1 with err. */
static int load_migrations(const char *dir, struct migration_set *set, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    int rc = -1;

    if (d == NULL) {
        set_err(err, errlen, "schema directory %s: %s", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        if (name[0] == '.' || len < 4 || strcmp(name + len - 4, ".sql") != 0)
            continue;
        int version = parse_file_name(name);
        if (version < 0) {
            set_err(err, errlen,
                    "%s/%s: a migration file is named <number>_<name>.sql, e.g. 005_add_x.sql", dir,
                    name);
            goto out;
        }
        if (set->n == set->cap) {
            size_t ncap = set->cap == 0 ? 16 : set->cap * 2;
            struct migration *n = realloc(set->items, ncap * sizeof(*n));
            if (n == NULL) {
                set_err(err, errlen, "out of memory");
                goto out;
            }
            set->items = n;
            set->cap = ncap;
        }
        struct migration *m = &set->items[set->n];
        memset(m, 0, sizeof(*m));
        m->version = version;
        m->file = strdup(name);
        if (m->file == NULL) {
            set_err(err, errlen, "out of memory");
            goto out;
        }
        set->n++;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
            set_err(err, errlen, "%s/%s: path too long", dir, name);
            goto out;
        }
        if (read_file(path, &m->sql, &m->len, err, errlen) != 0)
            goto out;
        if (sha256_hex(m->sql, m->len, m->sha256) != 0) {
            set_err(err, errlen, "%s: SHA-256 failed", path);
            goto out;
        }
    }
    if (set->n == 0) {
        set_err(err, errlen, "schema directory %s has no <number>_<name>.sql migrations", dir);
        goto out;
    }
    qsort(set->items, set->n, sizeof(set->items[0]), by_version);
    for (size_t i = 1; i < set->n; i++) {
        if (set->items[i].version == set->items[i - 1].version) {
            set_err(err, errlen, "%s: %s and %s have the same number", dir, set->items[i - 1].file,
                    set->items[i].file);
            goto out;
        }
    }
    rc = 0;
out:
    closedir(d);
    return rc;
}

/* Runs one statement that returns no rows (or rows we ignore). 0, or -1 with err. */
static int exec_simple(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        set_err(err, errlen, "%s: %s", what, PQerrorMessage(conn));
        rc = -1;
    }
    PQclear(res);
    return rc;
}

/* The 1-based line of the 1-based character position pos in the UTF-8 text sql. */
static long line_of_position(const char *sql, size_t len, long pos)
{
    long line = 1, chars = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)sql[i];
        if ((c & 0xC0) != 0x80 && ++chars >= pos)
            break;
        if (c == '\n')
            line++;
    }
    return line;
}

static void describe_sql_error(const struct migration *m, const char *dir, PGresult *res,
                               PGconn *conn, char *err, size_t errlen)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
    char where[64] = "";

    if (pos != NULL)
        snprintf(where, sizeof(where), ":%ld", line_of_position(m->sql, m->len, atol(pos)));
    if (primary == NULL) {
        set_err(err, errlen, "%s/%s%s: %s", dir, m->file, where, PQerrorMessage(conn));
        return;
    }
    set_err(err, errlen, "%s/%s%s: %s%s%s (SQLSTATE %s); nothing of this migration was applied",
            dir, m->file, where, primary, detail ? " — " : "", detail ? detail : "",
            state ? state : "?");
}

/* Applies one migration and its schema_migrations row in one transaction. */
static int apply_one(PGconn *conn, const struct migration *m, const char *dir, char *err,
                     size_t errlen)
{
    PGresult *res = NULL;
    char version[16];
    const char *params[3];
    int rc = -1;

    if (exec_simple(conn, "BEGIN", "BEGIN", err, errlen) != 0)
        return -1;
    res = PQexec(conn, m->sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK &&
        PQresultStatus(res) != PGRES_EMPTY_QUERY) {
        describe_sql_error(m, dir, res, conn, err, errlen);
        goto out;
    }
    PQclear(res);
    res = NULL;
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        set_err(err, errlen,
                "%s/%s: ended the migration's transaction (no BEGIN/COMMIT/ROLLBACK in a "
                "migration); it is NOT recorded as applied",
                dir, m->file);
        goto out;
    }
    snprintf(version, sizeof(version), "%d", m->version);
    params[0] = version;
    params[1] = m->file;
    params[2] = m->sha256;
    res = PQexecParams(conn,
                       "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                       "VALUES ($1::int, $2, $3, now())",
                       3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_err(err, errlen, "%s/%s: recording it in schema_migrations: %s", dir, m->file,
                PQerrorMessage(conn));
        goto out;
    }
    PQclear(res);
    res = PQexec(conn, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        describe_sql_error(m, dir, res, conn, err, errlen);
        goto out;
    }
    rc = 0;
out:
    PQclear(res);
    if (rc != 0 && PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PGresult *rb = PQexec(conn, "ROLLBACK");
        PQclear(rb);
    }
    return rc;
}

static struct migration *find_version(struct migration_set *set, int version)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->items[i].version == version)
            return &set->items[i];
    return NULL;
}

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

TG_PRINTF(2, 3) static void say(FILE *out, const char *fmt, ...)
{
    va_list ap;

    if (out == NULL)
        return;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fflush(out);
}

/* Compares schema_migrations with the files; marks applied ones. 0, or -1 with err. */
static int check_applied(PGconn *conn, struct migration_set *set, const char *dir, FILE *out,
                         char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, "SELECT version, name, checksum, applied_at::text "
                                 "FROM schema_migrations ORDER BY version");
    int max_applied = 0;
    int rc = -1;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        set_err(err, errlen, "reading schema_migrations: %s", PQerrorMessage(conn));
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        int version = atoi(PQgetvalue(res, i, 0));
        const char *name = PQgetvalue(res, i, 1);
        const char *checksum = PQgetvalue(res, i, 2);
        struct migration *m = find_version(set, version);
        if (version > max_applied)
            max_applied = version;
        if (m == NULL) {
            say(out, "note: migration %d (%s) is applied but not in %s (a newer tollgate?)\n",
                version, name, dir);
            continue;
        }
        if (strcmp(checksum, m->sha256) != 0) {
            set_err(err, errlen,
                    "%s/%s changed after it was applied (checksum in schema_migrations %.12s…, "
                    "file %.12s…): restore the file and put the change in a new migration",
                    dir, m->file, checksum, m->sha256);
            goto out;
        }
        m->is_applied = true;
        snprintf(m->applied_at, sizeof(m->applied_at), "%s", PQgetvalue(res, i, 3));
    }
    for (size_t i = 0; i < set->n; i++) {
        if (!set->items[i].is_applied && set->items[i].version < max_applied) {
            set_err(err, errlen,
                    "%s/%s is not applied but migration %d already is: number new migrations "
                    "after the last applied one",
                    dir, set->items[i].file, max_applied);
            goto out;
        }
    }
    rc = 0;
out:
    PQclear(res);
    return rc;
}

int tg_migrate_run(const char *conninfo, const char *schema_dir, FILE *out, char *err,
                   size_t errlen)
{
    struct migration_set set = {0};
    PQconninfoOption *opts = NULL;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    char *perr = NULL;
    int rc = TG_MIGRATE_ERR_CONFIG;
    size_t n_applied = 0, n_skipped = 0;

    if (conninfo == NULL || schema_dir == NULL) {
        set_err(err, errlen, "no connection string or schema directory");
        goto out;
    }
    if (load_migrations(schema_dir, &set, err, errlen) != 0)
        goto out;
    opts = PQconninfoParse(conninfo, &perr);
    if (opts == NULL) {
        set_err(err, errlen, "invalid connection string: %s", perr ? perr : "out of memory");
        goto out;
    }

    rc = TG_MIGRATE_ERR_DB;
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {conninfo, "tollgate-migrate", NULL};
    conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        set_err(err, errlen, "cannot connect to PostgreSQL: %s",
                conn ? PQerrorMessage(conn) : "out of memory");
        goto out;
    }
    if (exec_simple(conn, "SET client_min_messages = warning; SET TIME ZONE 'UTC'", "session setup",
                    err, errlen) != 0)
        goto out;

    res = PQexec(conn, "SELECT pg_try_advisory_lock(" MIGRATE_LOCK_KEY ")");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        set_err(err, errlen, "taking the migration lock: %s", PQerrorMessage(conn));
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        say(out, "waiting for another tollgate migrate to finish\n");
        if (exec_simple(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
                        "waiting for the migration lock", err, errlen) != 0)
            goto out;
    }
    if (exec_simple(conn,
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY,"
                    " name text NOT NULL,"
                    " checksum text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())",
                    "creating schema_migrations", err, errlen) != 0)
        goto out;
    if (check_applied(conn, &set, schema_dir, out, err, errlen) != 0)
        goto out;

    for (size_t i = 0; i < set.n; i++) {
        struct migration *m = &set.items[i];
        if (m->is_applied) {
            say(out, "skipped %s (applied %s)\n", m->file, m->applied_at);
            n_skipped++;
            continue;
        }
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (apply_one(conn, m, schema_dir, err, errlen) != 0)
            goto out;
        say(out, "applied %s (sha256 %.12s…, %.0f ms)\n", m->file, m->sha256, elapsed_ms(&t0));
        n_applied++;
    }
    say(out, "schema up to date: %zu applied now, %zu already applied\n", n_applied, n_skipped);
    rc = TG_MIGRATE_OK;
out:
    PQclear(res);
    if (conn != NULL && PQstatus(conn) == CONNECTION_OK) {
        PGresult *u = PQexec(conn, "SELECT pg_advisory_unlock_all()");
        PQclear(u);
    }
    PQfinish(conn);
    PQconninfoFree(opts);
    PQfreemem(perr);
    set_free(&set);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tollgate migrate [--schema-dir DIR]\n"
            "Applies the numbered SQL migrations in DIR (default %s) to the database at\n"
            "DATABASE_URL, each once, in one transaction each, recorded in schema_migrations.\n"
            "Exit status: 0 done, 1 database error, 2 bad configuration.\n",
            TG_DEFAULT_SCHEMA_DIR);
}

int tg_migrate_main(int argc, char **argv)
{
    const char *schema_dir = TG_DEFAULT_SCHEMA_DIR;
    char err[1024];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--schema-dir") == 0) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                fprintf(stderr, "tollgate migrate: --schema-dir needs a directory\n");
                return 2;
            }
            schema_dir = argv[++i];
        } else if (strncmp(a, "--schema-dir=", 13) == 0 && a[13] != '\0') {
            schema_dir = a + 13;
        } else {
            fprintf(stderr, "tollgate migrate: unknown argument '%s' (try --help)\n", a);
            return 2;
        }
    }

    const char *conninfo = getenv("DATABASE_URL");
    if (conninfo == NULL || conninfo[0] == '\0') {
        fprintf(stderr, "tollgate migrate: DATABASE_URL: required (a libpq connection string "
                        "or postgresql:// URI)\n");
        return 2;
    }
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (opts == NULL) {
        set_err(err, sizeof(err), "%s", perr ? perr : "out of memory");
        fprintf(stderr, "tollgate migrate: DATABASE_URL: invalid: %s\n", err);
        PQfreemem(perr);
        return 2;
    }
    PQconninfoFree(opts);

    int rc = tg_migrate_run(conninfo, schema_dir, stdout, err, sizeof(err));
    if (rc == TG_MIGRATE_OK)
        return 0;
    fprintf(stderr, "tollgate migrate: %s\n", err);
    return rc == TG_MIGRATE_ERR_CONFIG ? 2 : 1;
}

/* migrate.h: `tollgate migrate`, applying schema/NNN_name.sql to PostgreSQL once each, in order. */
#ifndef TG_MIGRATE_H
#define TG_MIGRATE_H

#include <stddef.h>
#include <stdio.h>

#include "core/common.h"

/* Results of tg_migrate_run(). */
enum tg_migrate_status {
    TG_MIGRATE_OK = 0,
    TG_MIGRATE_ERR_DB = -1,     /* connection, SQL error, changed checksum, out-of-order file */
    TG_MIGRATE_ERR_CONFIG = -2, /* bad conninfo, unreadable schema dir, badly named file */
};

/*
 * Applies the migrations in schema_dir to the database at conninfo (a libpq connection string
 * or URI), blocking. Files are named <number>_<name>.sql (e.g. 001_ledger.sql) and applied in
 * numeric order; other names ending in .sql are refused, files not ending in .sql ignored.
 * A session advisory lock serialises concurrent migrators (the second one waits, then finds
 * everything applied). Each migration runs in one transaction together with its row in
 * schema_migrations (version, name, checksum = hex SHA-256 of the file, applied_at); the files
 * must not contain BEGIN/COMMIT. Applied migrations are skipped; one whose file changed since
 * it was applied, or an unapplied file numbered below an applied one, stops the run before
 * anything else is applied.
 * Writes one line per migration ("applied ...", "skipped ...") to out (may be NULL).
 * Returns TG_MIGRATE_OK, or TG_MIGRATE_ERR_DB / TG_MIGRATE_ERR_CONFIG with a one-line message
 * in err. Migrations applied before a failure stay applied.
 */
TG_MUST_CHECK int tg_migrate_run(const char *conninfo, const char *schema_dir, FILE *out, char *err,
                                 size_t errlen);

/*
 * The `tollgate migrate` command: argv[0] is the command name, then options
 * (--schema-dir DIR, --help). Reads DATABASE_URL from the environment. The default schema
 * directory is TG_DEFAULT_SCHEMA_DIR (set at build time). Progress goes to stdout, errors to
 * stderr as one line. Returns the exit status: 0 done, 1 database error, 2 bad configuration.
 */
int tg_migrate_main(int argc, char **argv);

#endif

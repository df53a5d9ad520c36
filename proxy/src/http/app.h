/* app.h: the running process: start-up, serving, graceful stop. */
#ifndef TG_APP_H
#define TG_APP_H

#include <stddef.h>

/* Runs tollgate with tg_app->cfg until SIGTERM/SIGINT. Returns the exit status: 0 after a
 * graceful stop, 2 for a configuration problem (one line on stderr), 1 otherwise. */
int tg_app_run(void);
/* The TCP port being served. */
int tg_app_listen_port(void);
/* Builds a key snapshot from JWT_SECRET/JWT_PUBLIC_KEY_FILE plus this JWKS and installs it. */
int tg_app_install_jwks(const char *jwks, size_t len, char *err, size_t errlen);

#endif

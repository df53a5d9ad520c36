/* static_files.h: /dashboard/ served from DASHBOARD_DIR (dashboard-static/). */
#ifndef TG_STATIC_FILES_H
#define TG_STATIC_FILES_H

struct tg_conn;

/* GET/HEAD of a file under /dashboard/; "/" and "/dashboard" redirect to "/dashboard/". */
void tg_static_dispatch(struct tg_conn *c);

#endif

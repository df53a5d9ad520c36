/* admin_openapi.h: the OpenAPI 3.1 description of the admin API, served at
 * GET /admin/api/openapi.json. The text is proxy/src/admin/openapi.json, embedded by
 * gen_openapi.sh into admin_openapi_doc.c (a unit test checks that the two are equal). */
#ifndef TG_ADMIN_OPENAPI_H
#define TG_ADMIN_OPENAPI_H

#include <stddef.h>

extern const char tg_admin_openapi_json[];
extern const size_t tg_admin_openapi_json_len;

#endif

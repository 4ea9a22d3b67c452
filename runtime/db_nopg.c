/* A build without libpq: no PostgreSQL driver. db_open answers a PostgreSQL target with "this
 * build has no PostgreSQL driver". runtime/db_pg.c replaces this file in a build with libpq. */
#include "runtime/db_driver.h"

const struct db_driver *db_pg_driver(void)
{
	return NULL;
}

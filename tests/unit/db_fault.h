/* Fault injection for unit tests (header-only), on either engine: a trigger that makes a write
 * fail with a message, as a disk error or a constraint the test cannot otherwise provoke would.
 * SQLite: a TEMP trigger with RAISE(ABORT, ...). PostgreSQL: a PL/pgSQL trigger function raising
 * an exception (PostgreSQL has no RAISE in plain SQL, and a trigger's WHEN may not hold a
 * subquery, so the condition goes in the function). Include after testutil.h. */
#ifndef PBIPORT_TEST_DB_FAULT_H
#define PBIPORT_TEST_DB_FAULT_H

#include "tests/unit/testutil.h"

/* Makes every `event` ("INSERT" or "DELETE") of a row of table fail with message while when (an
 * SQL condition over NEW or OLD and the database, NULL: always) holds. name is the trigger's
 * name (a plain identifier); message holds no quote and no percent sign. A failure fails the test. */
TU_FN void tu_fault_trigger(pb_db *db, const char *name, const char *event, const char *table, const char *when,
			    const char *message)
{
	char sql[2048];
	int rc;
	if (db_dialect(db) == DB_DIALECT_POSTGRESQL)
		rc = xsnprintf(sql, sizeof sql,
			       "CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $fault$ BEGIN "
			       "IF %s THEN RAISE EXCEPTION '%s'; END IF; RETURN %s; END $fault$; "
			       "CREATE TRIGGER %s BEFORE %s ON %s FOR EACH ROW EXECUTE FUNCTION %s()",
			       name, when ? when : "true", message, strcmp(event, "DELETE") ? "NEW" : "OLD", name, event,
			       table, name);
	else
		rc = xsnprintf(sql, sizeof sql,
			       "CREATE TEMP TRIGGER %s BEFORE %s ON %s %s%s BEGIN SELECT RAISE(ABORT, '%s'); END", name,
			       event, table, when ? "WHEN " : "", when ? when : "", message);
	if (rc)
		fail_msg("fault trigger %s: SQL too long", name);
	tu_sql(db, sql);
}

/* Removes the trigger tu_fault_trigger made on table. */
TU_FN void tu_fault_clear(pb_db *db, const char *name, const char *table)
{
	char sql[256];
	if (db_dialect(db) == DB_DIALECT_POSTGRESQL)
		xsnprintf(sql, sizeof sql, "DROP TRIGGER %s ON %s; DROP FUNCTION %s()", name, table, name);
	else
		xsnprintf(sql, sizeof sql, "DROP TRIGGER temp.%s", name);
	tu_sql(db, sql);
}

#endif

/* Tenant-wide back-off: the store of Retry-After waits Power BI gave a tenant (table
 * tenant_backoff, sql/0012_tenant_backoff.sql; no other module touches it).
 *
 * Power BI's throttling budgets for the admin scanner APIs (modified, getInfo, scanStatus,
 * scanResult), its other admin APIs and the push APIs are the tenant's, shared by every caller:
 * when one job gets a 429 with "Retry-After: 3600", every other job that calls the same API
 * family on the same tenant must wait too, or it spends the tenant's budget and prolongs the
 * throttling. A job that got a 429 records it here (tenant_backoff_note); a job that is about to
 * call a family asks first (tenant_backoff_get, or core/flow/tenant_hold.h for a job, which puts the job
 * back in the queue until the wait ends instead of sleeping in the worker). The waits live in
 * the database, so they hold across processes and restarts.
 *
 * Tenants are matched case-insensitively (the key is stored in lower case). */
#ifndef PBIPORT_TENANT_BACKOFF_H
#define PBIPORT_TENANT_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/db.h"
#include "runtime/limits.h"

/* The API families whose budget a tenant's callers share. TB_ADMIN is Power BI's admin APIs
 * other than the scanner's (/admin/groups, /admin/datasets, ...). */
typedef enum tb_family { TB_SCANNER, TB_ADMIN, TB_PUSH } tb_family;

/* "scanner", "admin", "push" (static). */
const char *tenant_backoff_family_name(tb_family f);

/* A wait in force. */
typedef struct tenant_backoff {
	char until[PB_TIME_BUF];   /* no call of the family before this (ISO-8601 UTC) */
	char reason[PB_ERR_MAX];   /* who got the 429, for what, and the Retry-After */
	int64_t wait_ms;           /* from now until then, > 0 */
} tenant_backoff;

/* Records that Power BI asked the tenant's callers of family f to wait retry_after_s seconds
 * from now (a 429's Retry-After; <= 0 means 60 s, Power BI's usual). why names who got it and
 * for what ("integration 'prod' starting a workspace scan"). A wait already recorded that ends
 * later is kept. Waits that have ended are dropped. *out (may be NULL) is the wait now in force.
 * PB_EINVAL for an empty tenant. */
int tenant_backoff_note(pb_db *db, const char *tenant_id, tb_family f, long retry_after_s, const char *why,
			tenant_backoff *out, char *err);

/* tenant_backoff_note for a caller that goes on whatever happens (it is putting its own job
 * back in the queue): why is a printf format; a failure to record the wait is logged and
 * false returned. */
bool tenant_backoff_record(pb_db *db, const char *tenant_id, tb_family f, long retry_after_s, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* *waiting true, and *out filled, when the tenant's callers of family f must wait now. */
int tenant_backoff_get(pb_db *db, const char *tenant_id, tb_family f, tenant_backoff *out, bool *waiting,
		       char *err);

#endif

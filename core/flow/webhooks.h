/* Webhooks: organization owners register HTTPS endpoints for events; each event becomes one
 * delivery job per matching webhook (docs/webhooks.md).
 *
 * Events: "publish.succeeded", "publish.failed", "update.available", "drift.detected",
 * "refresh.failed", "import.failed". */
#ifndef PBIPORT_WEBHOOKS_H
#define PBIPORT_WEBHOOKS_H

#include "runtime/db.h"

struct json_t;

/* Records that `event` happened in org_id with `data` (borrowed; copied) as the event's data:
 * one delivery job is queued per active webhook of the organization that subscribes to the
 * event; none when there is none. Joins the caller's transaction when there is one (so an
 * event is queued exactly when what it reports is committed). Cheap when the organization has
 * no webhook (one indexed read). PB_OK, or the database's failure with err set. */
int webhook_emit(pb_db *db, const char *org_id, const char *event, const struct json_t *data, char *err);

#endif

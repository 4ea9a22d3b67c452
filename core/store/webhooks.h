/* The webhooks store: organizations' webhooks and their deliveries (sql/0017_webhooks.sql).
 * Owns the tables webhooks and webhook_deliveries; no other module writes them.
 *
 * - A webhook's secret (the HMAC key that signs its deliveries) is sealed with the key ring
 *   under the context "webhook:<id>" and never returned; webhook_open_secret() opens it for the
 *   delivery job only.
 * - events is stored as the JSON text of a sorted array of event names (core/flow/webhooks.c
 *   checks the names); the store only matches them.
 * - A delivery is keyed (webhook, event id): inserting the same event for the same webhook
 *   twice writes nothing the second time, so an event reported again (a job resumed after its
 *   worker died) reaches each webhook once.
 *
 * Every read that a request makes takes the caller's org id: another organization's webhooks are
 * not found. Ownership: values returned are new; free with the matching _free. */
#ifndef PBIPORT_STORE_WEBHOOKS_H
#define PBIPORT_STORE_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/db.h"

struct pb_keyring;
struct pb_config;

typedef struct pb_webhook {
	char id[PB_ID_BUF];
	char org_id[PB_ID_BUF];
	char *url;
	char *events;                  /* JSON array text */
	bool active;
	char *disabled_reason;         /* NULL unless pbiport turned it off */
	char created_by[PB_ID_BUF];    /* "" when the user was deleted */
	char created_at[PB_TIME_BUF], updated_at[PB_TIME_BUF];
	/* the last delivery attempt, or NULL / 0 before the first */
	char *last_delivery_at;
	char *last_delivery_state;
	long last_status;              /* 0: no HTTP answer */
	char *last_error;
} pb_webhook;

void webhook_free(pb_webhook *w);
void webhooks_free(pb_webhook **v, size_t n);

/* A new webhook of org_id: url and events (JSON array text) already checked, secret the
 * plaintext HMAC key (sealed here). id receives the new id. PB_EINVAL when kr is NULL. */
int webhooks_create(pb_db *db, const struct pb_keyring *kr, const char *org_id, const char *user_id, const char *url,
		    const char *events, const char *secret, char id[PB_ID_BUF], char *err);

/* What an update changes: NULL / -1 keeps the field. */
typedef struct webhook_change {
	const char *url;
	const char *events;            /* JSON array text */
	const char *secret;            /* plaintext: sealed here */
	int active;                    /* 0 / 1; turning it on clears disabled_reason */
} webhook_change;

/* Applies ch to webhook id of org_id in one statement. PB_ENOTFOUND when org_id has no such
 * webhook; PB_EINVAL when a secret is to be sealed without kr. */
int webhooks_update(pb_db *db, const struct pb_keyring *kr, const char *org_id, const char *id,
		    const webhook_change *ch, char *err);

/* Deletes the webhook and its deliveries. PB_ENOTFOUND when org_id has no such webhook. Queued
 * delivery jobs find their delivery gone and end. */
int webhooks_delete(pb_db *db, const char *org_id, const char *id, char *err);

/* org_id NULL: any organization's (the delivery job, which got the id from its own row).
 * PB_ENOTFOUND when there is none. */
int webhooks_get(pb_db *db, const char *org_id, const char *id, pb_webhook **out, char *err);
/* The organization's webhooks, oldest first, at most PB_WEBHOOKS_MAX. *v is a new array of *n. */
int webhooks_list(pb_db *db, const char *org_id, pb_webhook ***v, size_t *n, char *err);
/* How many webhooks org_id has. */
int webhooks_count(pb_db *db, const char *org_id, size_t *n, char *err);

/* The ids of org_id's active webhooks whose events hold `event`: *ids is a new array of *n
 * (free()). One indexed read. */
int webhooks_subscribed(pb_db *db, const char *org_id, const char *event, char (**ids)[PB_ID_BUF], size_t *n,
			char *err);

/* Opens webhook id's secret. *plain is new (pb_secret_free(*plain, *len)). PB_EINVAL when kr is
 * NULL, PB_ENOTFOUND when there is no such webhook; pb_open's failure when the sealed value does
 * not open with kr. */
int webhook_open_secret(pb_db *db, const struct pb_keyring *kr, const char *id, char **plain, size_t *len,
			char *err);

/* Re-seals every webhook secret made with an older key (pbiport rotate-keys); counts them. */
int webhooks_rotate(pb_db *db, const struct pb_config *cfg, size_t *resealed, char *err);

/* ---- deliveries ---- */

#define PB_DELIVERY_NSTATES 5
/* pending (not tried yet), retrying (tried; tried again at next_attempt_at), delivered (a 2xx),
 * failed (given up, or the receiver answered 410), skipped (the webhook was turned off before
 * it was sent). */
extern const char *const pb_delivery_states[PB_DELIVERY_NSTATES];

typedef struct pb_delivery {
	char id[PB_ID_BUF];
	char webhook_id[PB_ID_BUF];
	char event_id[PB_ID_BUF];
	char *event;
	char *payload;                 /* the exact body */
	char *state;
	int attempts;
	long last_status;              /* 0: none */
	char *last_error;              /* NULL when none */
	char *job_id;                  /* NULL before its job was queued */
	char *next_attempt_at;         /* NULL unless retrying */
	char created_at[PB_TIME_BUF], updated_at[PB_TIME_BUF];
	char *delivered_at;            /* NULL until delivered */
} pb_delivery;

void delivery_free(pb_delivery *d);
void deliveries_free(pb_delivery **v, size_t n);

/* A pending delivery of payload to webhook_id. *inserted false (and nothing written) when that
 * webhook already has event_id. id receives the new delivery's id. Joins the caller's
 * transaction. */
int deliveries_insert(pb_db *db, const char *webhook_id, const char *event_id, const char *event, const char *payload,
		      char id[PB_ID_BUF], bool *inserted, char *err);
/* Records the job that sends delivery id. */
int deliveries_set_job(pb_db *db, const char *id, const char *job_id, char *err);
/* Keeps the newest `keep` deliveries of webhook_id, and every one not yet ended. */
int deliveries_prune(pb_db *db, const char *webhook_id, size_t keep, char *err);
/* PB_ENOTFOUND when there is none (its webhook was deleted). */
int deliveries_get(pb_db *db, const char *id, pb_delivery **out, char *err);
/* webhook_id's newest deliveries first, at most limit. *v is a new array of *n. */
int deliveries_list(pb_db *db, const char *webhook_id, size_t limit, pb_delivery ***v, size_t *n, char *err);

/* What one attempt of a delivery came to, recorded on the delivery and (unless it was skipped:
 * nothing was sent) as its webhook's last delivery, in one transaction. */
typedef struct delivery_attempt {
	const char *delivery_id;
	const char *webhook_id;
	const char *state;             /* one of pb_delivery_states */
	int attempts;                  /* attempts made so far (the job's) */
	long status;                   /* the receiver's HTTP status; 0 when none */
	const char *error;             /* one line, NULL when delivered */
	const char *next_attempt_at;   /* when retrying, else NULL */
	const char *disable_reason;    /* non-NULL: turn the webhook off, saying why */
} delivery_attempt;
int deliveries_record(pb_db *db, const delivery_attempt *a, char *err);

#endif

/* The life of a published model (docs/lifecycle.md): reading it, who may change it, and what
 * its update (core/flow/model_update.h), unpublish (core/flow/model_unpublish.h) and drift
 * (core/flow/drift.h) share: the publisher's Power BI session, the definition the port's
 * contract renders now, and the live definition Fabric returns.
 *
 * Who may change a published model (update, unpublish, auto_update): the user who published it
 * or an organization owner; anyone else of the organization gets "forbidden" (403), another
 * organization "not_found" (404). Power BI is always asked as the publisher, through their
 * delegated Power BI connection (as the publish was made): an owner acting on another user's
 * model acts through that user's connection.
 *
 * State: published_models keeps active, updating, unpublishing, unpublished or detached
 * (core/store/published_models.h). A transitional state whose job has ended (it failed or was
 * cancelled before finishing its work) reads as active, and the next update or unpublish
 * takes over from it. */
#ifndef PBIPORT_MODEL_LIFECYCLE_H
#define PBIPORT_MODEL_LIFECYCLE_H

#include <stdbool.h>

#include "core/flow/pbi_session.h"
#include "core/flow/publish.h"
#include "core/store/catalog.h"
#include "core/store/published_models.h"
#include "runtime/config.h"
#include "runtime/crypto.h"
#include "runtime/db.h"
#include "runtime/failure.h"

struct json_t;

/* Who asks. */
typedef struct lc_actor {
	const char *org_id;
	const char *user_id;
	bool org_owner;
} lc_actor;

/* The published model id of org_id: "not_found" (404) when there is none. *out new
 * (pm_row_free). */
int lifecycle_load(pb_db *db, const char *org_id, const char *id, pm_row **out, pb_failure *f);

/* The state r is in now (static text): its stored state, except a transitional one whose job
 * ended, which is "active". *stale_job (may be NULL) receives that job's id ("" when none), for
 * pm_lifecycle_claim. */
int lifecycle_state(pb_db *db, const pm_row *r, const char **state, char stale_job[PB_ID_BUF], char *err);

/* "forbidden" (403) unless by published r or owns the organization; what ("update",
 * "unpublish") names the act in the message. */
int lifecycle_authorize(const pm_row *r, const lc_actor *by, const char *what, pb_failure *f);

/* Refuses (409) what cannot be done to a model in state: "model_unpublished" for an
 * unpublished or detached model, "model_busy" while another job works on it (its id). */
int lifecycle_check_state(const pm_row *r, const char *state, const char *what, pb_failure *f);

/* A request body of the lifecycle: JSON object with only the keys allowed (NULL-terminated),
 * each a boolean; an empty body is {}. *out new. "bad_request" naming the field. */
int lifecycle_body(const char *body, size_t len, const char *const *allowed, struct json_t **out, pb_failure *f);
/* The boolean doc[key], or dflt when absent. */
bool lifecycle_flag(const struct json_t *doc, const char *key, bool dflt);

/* GET /api/published-models/{id}: core/store/published_models.h pm_row_json, state as it is
 * now. */
int lifecycle_get_json(pb_db *db, const char *org_id, const char *id, struct json_t **out, pb_failure *f);

/* PATCH /api/published-models/{id} {"auto_update": "off" | "additive"} (publisher or owner).
 * *out (new) the model as GET shows it. "bad_request" naming the field. */
int lifecycle_patch(pb_db *db, const lc_actor *by, const char *id, const char *body, size_t len,
		    struct json_t **out, pb_failure *f);

/* Opens the publisher's Power BI session for r. The publisher deleted: "no_credentials";
 * their connection missing or expired: "not_connected" / "needs_reconnect", the message naming
 * the publisher and what to do. */
int lifecycle_session(pbi_session *s, pb_db *db, const pb_config *cfg, const pm_row *r, pb_failure *f);

/* What the port's contract renders now, as a publish would (core/flow/publish.h
 * publish_port_source with the HTTP path the publish was given). */
typedef struct lc_render {
	cat_port *port;                        /* new, with its contract text */
	pb_files files;                        /* the rendered definition */
	publish_source src;                    /* the data source it reads */
	char *contract_version;                /* new; NULL when the contract has none */
	int contract_revision;
	char contract_hash[PB_SHA256_HEX_LEN + 1];
} lc_render;
void lc_render_release(lc_render *r);

/* Renders r's port now. The port gone: "not_found"; retired: "port_retired" (409); the
 * templates failing: as publish_port_source. */
int lifecycle_render(pb_db *db, const pb_config *cfg, const pm_row *r, lc_render *out, pb_failure *f);

/* The live definition of r's model (Fabric getDefinition, TMDL): the files of the definition
 * (definition.pbism and definition/...), sorted by path. *out new (pb_files_release). rc and
 * the message in err as the msapi call gave them (api->last says what failed). */
int lifecycle_live_definition(msapi *api, const pm_row *r, pb_files *out, char *err);

/* The stored definition of r (what the last publish or update rendered) into *out (new);
 * *kept false (out empty) when none is kept. */
int lifecycle_stored_definition(const pm_row *r, pb_files *out, bool *kept, char *err);

/* A Microsoft or session failure of a call made through s while `what` ("reading the model's
 * definition") for r: f filled (ms_failure.h), the message naming the model. Returns f->rc. */
int lifecycle_api_failure(const pbi_session *s, int rc, const pm_row *r, const char *what, pb_failure *f);

/* ---- what the lifecycle's job kinds share (update, unpublish) ---- */

#include "core/flow/worker.h"

/* One job working on one published model as its publisher. */
typedef struct lc_job {
	pb_job_ctx *ctx;
	pm_row *row;                /* owned: lc_job_release frees it */
	pbi_session s;              /* open once lc_job_session succeeded */
	bool have_session;
} lc_job;

/* Loads the job's published model (input "published_model_id"); a missing or unknown one ends
 * the job (bad_input / not_found). */
int lc_job_load(lc_job *j, pb_job_ctx *ctx, const struct json_t *input);
/* Opens the publisher's session once (lifecycle_session); a failure ends the attempt. */
int lc_job_session(lc_job *j);
/* Whether the job's checkpoint holds key (a step done before a crash). */
bool lc_job_done(const lc_job *j, const char *key);
/* Ends the attempt for a failed Power BI call made while `what`, its message detail
 * (lifecycle_api_failure's words, job_end_with). */
int lc_job_api_failure(lc_job *j, int rc, const char *what, const char *detail);
void lc_job_release(lc_job *j);

#endif

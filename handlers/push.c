/* /api/push-connections and /api/push-datasets: team-shared service principals for pushing,
 * push datasets, and their rows (JSON array, NDJSON or CSV). */
#include <jansson.h>
#include <string.h>

#include "core/flow/push.h"
#include "handlers/handlers.h"
#include "runtime/json_body.h"
#include "runtime/util.h"

static push_caller caller(const struct req *r)
{
	push_caller who = { r->who.org_id, r->who.user_id, r->who.role };
	return who;
}

static int parse_body(struct req *r, json_t **body)
{
	if (json_body_parse(r->body, r->body_len, 0, body, r->err))
		return req_fail(r, PB_EINVAL, NULL, "request body: %s", r->err);
	return 0;
}

/* A list of the caller's (connections, datasets), read by list and answered 200. */
static int answer_list(struct req *r, int (*list)(pb_db *, const push_caller *, json_t **, char *))
{
	push_caller who = caller(r);
	json_t *reply = NULL;
	int rc = list(r->db, &who, &reply, r->err);
	return req_answer_json_new(r, rc, 200, reply);
}

int api_push_connections_create(struct req *r)
{
	push_caller who = caller(r);
	json_t *body = NULL, *reply = NULL;
	int rc = parse_body(r, &body);
	if (!rc)
		rc = push_connection_create(r->db, r->cfg, &who, body, &reply, &r->fail);
	json_decref(body);
	return req_answer_json_new(r, rc, 201, reply);
}

int api_push_connections_list(struct req *r)
{
	return answer_list(r, push_connections_list);
}

int api_push_connections_delete(struct req *r)
{
	push_caller who = caller(r);
	int rc = push_connection_delete(r->db, &who, req_capture(r, "id"), &r->fail);
	return rc ? rc : req_reply(r, 204, "application/json", NULL, 0);
}

int api_push_datasets_create(struct req *r)
{
	push_caller who = caller(r);
	json_t *body = NULL, *reply = NULL;
	const char *warning = NULL;
	int status = 0;
	int rc = parse_body(r, &body);
	if (!rc)
		rc = push_dataset_create(r->db, r->cfg, &who, body, &status, &reply, &warning, &r->fail);
	json_decref(body);
	if (!rc && warning) {
		char hdr[512];
		/* RFC 7234 form: 299 = persistent warning */
		if (!xsnprintf(hdr, sizeof hdr, "299 pbiport \"%s\"", warning))
			req_header(r, "Warning", hdr);
	}
	return req_answer_json_new(r, rc, status, reply);
}

int api_push_datasets_list(struct req *r)
{
	return answer_list(r, push_datasets_list);
}

int api_push_datasets_get(struct req *r)
{
	push_caller who = caller(r);
	json_t *reply = NULL;
	int rc = push_dataset_get(r->db, &who, req_capture(r, "id"), &reply, r->err);
	return req_answer_json_new(r, rc, 200, reply);
}

int api_push_datasets_delete(struct req *r)
{
	push_caller who = caller(r);
	int rc = push_dataset_delete(r->db, r->cfg, &who, req_capture(r, "id"), &r->fail);
	return rc ? rc : req_reply(r, 204, "application/json", NULL, 0);
}

/* The body as a push_source: the route streams it (ROUTE_STREAM_BODY), so core/flow/push reads
 * it from the client in 64 KiB pieces and never holds all of it. */
static long body_read(void *ctx, char *buf, size_t n)
{
	return req_body_read(ctx, buf, n);
}

int api_push_rows_post(struct req *r)
{
	push_caller who = caller(r);
	push_source src = { body_read, r, r->body_unread };
	json_t *reply = NULL;
	int status = 0;
	int rc = push_rows_ingest(r->db, r->cfg, &who, req_capture(r, "id"), req_capture(r, "table"), r->content_type, &src,
				  &status, &reply, &r->fail);
	return req_answer_json_new(r, rc, status, reply);
}

int api_push_rows_delete(struct req *r)
{
	push_caller who = caller(r);
	json_t *reply = NULL;
	int rc = push_rows_delete(r->db, r->cfg, &who, req_capture(r, "id"), req_capture(r, "table"), &reply, &r->fail);
	return req_answer_json_new(r, rc, 200, reply);
}

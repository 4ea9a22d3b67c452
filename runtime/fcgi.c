#include "runtime/fcgi.h"

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/page_csrf.h"
#include "runtime/page_render.h"
#include "runtime/timeutil.h"
#include "runtime/util.h"

extern char **environ;

/* THE table from a pbiport result code to an HTTP status: nothing else in pbiport picks the
 * status of a failure. */
static const struct { int rc; int status; } rc_status[] = {
	{ PB_EINVAL, 400 }, { PB_ELIMIT, 400 }, { PB_EFORBIDDEN, 403 }, { PB_ENOTFOUND, 404 },
	{ PB_ECONFLICT, 409 }, { PB_EUPSTREAM, 502 }, { PB_EUNAVAIL, 503 },
	{ PB_ENOMEM, 500 }, { PB_EIO, 500 }, { PB_EINTERNAL, 500 },
};

int pb_rc_status(int rc)
{
	for (size_t i = 0; i < sizeof rc_status / sizeof rc_status[0]; i++)
		if (rc_status[i].rc == rc)
			return rc_status[i].status;
	return 500;
}

/* A web page's request (ROUTE_PAGE, or a browser's request no route matched): its failures
 * are answered as an HTML page with the same status, code and message as the JSON error. */
static bool page_request(const struct req *r)
{
	return r->route ? (r->route->flags & ROUTE_PAGE) != 0 : page_wants_html(r);
}

/* A failure answered before or instead of a handler: {"error":{code,message}}, or the
 * error page for a page request. */
static int answer(struct req *r, const struct pb_app *app, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int answer(struct req *r, const struct pb_app *app, int status, const char *code, const char *fmt, ...)
{
	char msg[PB_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	pb_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (page_request(r))
		return page_reply_failure(r, status, code, msg, app->page_chrome);
	return req_reply_error(r, status, code, "%s", msg);
}

/* Answers a handler's failure rc: the status of rc, the code the handler named in r->fail
 * (or rc's default) and its message. An unnamed 500 (a failure nobody foresaw: memory, the
 * database) says only the request id: the detail goes to the log (log_request prints r->err for
 * 5xx), not to the client; a named one (template_failed) was worded for the reader. */
static int reply_rc(struct req *r, const struct pb_app *app, int rc)
{
	int status = pb_rc_status(rc);
	bool named = r->fail.rc == rc && r->fail.code[0];
	const char *code = named ? r->fail.code : pb_rc_code(rc);
	sbuf_reset(&r->headers);
	if (status == 500 && !named)
		return answer(r, app, 500, "internal", "internal error (request %s)", r->request_id);
	/* an unnamed 503 is a service of pbiport's own (the database) that could not take the work:
	 * worth trying again shortly */
	long retry_after = r->fail.retry_after_s > 0 ? r->fail.retry_after_s : named ? 0 : PB_DB_RETRY_AFTER_S;
	if (rc == PB_EUNAVAIL && retry_after > 0) {
		char secs[24];
		if (!xsnprintf(secs, sizeof secs, "%ld", retry_after))
			req_header(r, "Retry-After", secs);
	}
	if (rc == PB_ENOTFOUND && !r->err[0])
		return answer(r, app, status, code, "not found");
	return answer(r, app, status, code, "%s", r->err);
}

static int check_query(struct req *r, const struct pb_app *app)
{
	for (size_t i = 0; i < r->nquery; i++) {
		bool ok = false;
		for (size_t j = 0; r->route->query && r->route->query[j] && !ok; j++)
			ok = !strcmp(r->query[i].name, r->route->query[j]);
		if (!ok)
			return answer(r, app, 400, "bad_request", "unknown query parameter '%.64s'",
				      r->query[i].name) ? PB_ENOMEM : PB_EINVAL;
	}
	return PB_OK;
}

/* A page asked for by a browser that is not signed in goes to the sign-in first, which brings it
 * back (return_to: the page's path and query, percent-encoded). */
static int sign_in_first(struct req *r, const struct pb_app *app)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *back = req_env(r, "REQUEST_URI");
	sbuf loc;
	sbuf_init(&loc, PB_RESPONSE_HEADERS_MAX / 2);
	if (!back || back[0] != '/' || back[1] == '/' || back[1] == '\\')
		back = "/";
	int bad = sbuf_addf(&loc, "%s?return_to=", app->signin_path);
	for (const unsigned char *p = (const unsigned char *)back; *p && !bad; p++)
		bad = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._~/", *p)
			      ? sbuf_addc(&loc, (char)*p)
			      : sbuf_addf(&loc, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
	if (bad || req_header(r, "Location", sbuf_str(&loc)) || req_header(r, "Cache-Control", "no-store"))
		answer(r, app, 401, "unauthorized", "%s", r->err);
	else
		req_reply(r, 302, "text/plain; charset=utf-8", NULL, 0);
	sbuf_release(&loc);
	return PB_ENOTFOUND;
}

static int identify(struct req *r, const struct pb_app *app)
{
	char why[PB_ERR_MAX];
	pb_auth_request in = {
		.remote_user = req_env(r, "REMOTE_USER"), .authorization = req_env(r, "HTTP_AUTHORIZATION"),
		.cookie = req_env(r, "HTTP_COOKIE"), .cookie_keys = r->cfg->rememberme_keys,
		.idle_s = r->cfg->session_idle_s,
	};
	int rc = auth_identify_request(r->db, &app->auth, &in, &r->who, r->err);
	if (rc == PB_ENOTFOUND) {
		/* a session cookie that no longer works is dropped, so the web server's own sign-in
		 * (which it skips while the cookie is there) asks again */
		char line[PB_SET_COOKIE_MAX];
		if (r->who.via == PB_VIA_SESSION &&
		    !auth_set_cookie(line, PB_SESSION_COOKIE, "", "/", -1, req_site_https(r), why))
			req_header(r, "Set-Cookie", line);
		if ((r->who.via == PB_VIA_NONE || r->who.via == PB_VIA_SESSION) && r->cfg->sso_signin && app->signin_path &&
		    (r->route->flags & ROUTE_PAGE) && !strcmp(r->method, "GET"))
			return sign_in_first(r, app);
		req_header(r, "WWW-Authenticate", "Bearer");
		answer(r, app, 401, "unauthorized", "%s", r->err);
		return rc;
	}
	if (rc) {
		reply_rc(r, app, rc);
		return rc;
	}
	if (r->route->role == PB_ROLE_OWNER && r->who.role != PB_ROLE_OWNER) {
		answer(r, app, 403, "forbidden", "only an organization owner may do this");
		return PB_EINVAL;
	}
	return PB_OK;
}

/* A session seen now moves its last sighting (sliding idle timeout), after the handler and
 * outside its read transaction, at most every PB_SESSION_RENEW_S (sessions_identify decides). */
static void session_seen(struct req *r, const struct pb_app *app)
{
	char err[PB_ERR_MAX];
	if (r->who.via == PB_VIA_SESSION && r->who.session_renew && app->auth.session_seen &&
	    app->auth.session_seen(r->db, r->who.session_id, err))
		log_event("warn", r->request_id, "session last seen not recorded: %s", err);
}

/* An error the web server produced itself and hands to pbiport to word (lighttpd's
 * server.error-handler, Apache's ErrorDocument) arrives with REDIRECT_STATUS set to that status.
 * It is answered in pbiport's JSON error shape with the request id, in the same words nginx's
 * error pages use (deploy/nginx/pbiport.conf), so every server's own 401, 413 and 5xx look alike.
 * Clients cannot set the variable (it is not an HTTP_ header); ordinary requests carry none or
 * 200. Returns true when it answered. */
static bool answer_web_server_error(struct req *r)
{
	static const struct { int status; const char *code, *message; } known[] = {
		{ 400, "bad_request", "the web server could not read the request" },
		{ 401, "unauthorized", "sign in with basic auth or send Authorization: Bearer <token>" },
		{ 403, "forbidden", "the web server refused the request" },
		{ 404, "not_found", "no such endpoint" },
		{ 408, "request_timeout", "the request was not received in time" },
		{ 411, "length_required", "send a Content-Length with the request body" },
		{ 413, "payload_too_large", "request body is larger than this route accepts" },
		{ 414, "uri_too_long", "the request URI is too long" },
		{ 431, "headers_too_large", "the request headers are too large" },
		{ 502, "unavailable", "the pbiport application is not answering" },
		{ 503, "unavailable", "the pbiport application is not answering" },
		{ 504, "unavailable", "the pbiport application is not answering" },
	};
	const char *v = req_env(r, "REDIRECT_STATUS");
	char *end;
	long status;
	if (!v || !*v)
		return false;
	errno = 0;
	status = strtol(v, &end, 10);
	if (errno || *end || status < 400 || status > 599)
		return false;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (known[i].status == status) {
			req_reply_error(r, known[i].status, known[i].code, "%s", known[i].message);
			return true;
		}
	req_reply_error(r, (int)status, status < 500 ? "bad_request" : "unavailable",
			"the web server answered %ld", status);
	return true;
}

/* The organization of each API token this process identified lately, by the token's id (not its
 * secret): what pb_app.prefetch is given. A token's user stays in its organization, and a guess
 * that no longer holds only leaves the prefetched rows unused. Direct-mapped by the id's first
 * hex digits (random). */
#define ORG_SEEN_SLOTS 64
static struct org_seen {
	char token_id[PB_ID_BUF], org_id[PB_ID_BUF];
} org_seen[ORG_SEEN_SLOTS];

static struct org_seen *org_seen_slot(const char *token_id)
{
	static const char hex[] = "0123456789abcdef";
	const char *hi = strchr(hex, token_id[0]), *lo = strchr(hex, token_id[1]);
	return &org_seen[((hi ? hi - hex : 0) * 16 + (lo ? lo - hex : 0)) % ORG_SEEN_SLOTS];
}

/* In a read-only route's read transaction, before the identity's lookup: the handler's first read
 * is queued to go with it (one round trip on PostgreSQL) when the token's organization is known. */
static void prefetch(struct req *r, const struct pb_app *app, char token_id[PB_ID_BUF])
{
	token_id[0] = '\0';
	if (!app->prefetch || !auth_bearer_token_id(req_env(r, "HTTP_AUTHORIZATION"), token_id))
		return;
	const struct org_seen *seen = org_seen_slot(token_id);
	if (!strcmp(seen->token_id, token_id))
		app->prefetch(r, seen->org_id);
}

/* After the identity's lookup: the organization of the token prefetch() looked at. */
static void remember_org(const struct req *r, const char *token_id)
{
	if (!token_id[0] || r->who.via != PB_VIA_TOKEN)
		return;
	struct org_seen *seen = org_seen_slot(token_id);
	xsnprintf(seen->token_id, sizeof seen->token_id, "%s", token_id);
	xsnprintf(seen->org_id, sizeof seen->org_id, "%s", r->who.org_id);
}

/* Opens the database and checks its schema: *db new (db_close), NULL on failure. */
static int open_database(const pb_config *cfg, pb_db **db, char *err)
{
	int rc = db_open(cfg->db_path, false, db, err);
	if (!rc && (rc = db_check_schema(*db, cfg->sql_dir, err))) {
		db_close(*db);
		*db = NULL;
	}
	return rc;
}

/* A process that started while its database could not be reached (PostgreSQL restarting, the
 * network) serves anyway: each request tries to connect, at most once a second, and is answered
 * 503 with Retry-After until it does. Exiting instead would have the pool restart it in a loop
 * and give up (deploy/systemd/pbiport-pool's quick exits). */
static int database_ready(struct req *r)
{
	static int64_t tried_ms;
	if (r->db)
		return PB_OK;
	if (tried_ms && pb_mono_ms() - tried_ms < 1000)
		return pb_err(r->err, PB_EUNAVAIL, "database: not reachable yet");
	tried_ms = pb_mono_ms();
	char err[PB_ERR_MAX];
	int rc = open_database(r->cfg, &r->db, err);
	if (!rc)
		log_event("info", r->request_id, "database reachable: serving");
	/* a schema not migrated yet is as unavailable to the client as a server restarting */
	return rc ? pb_err(r->err, PB_EUNAVAIL, "%s", err) : PB_OK;
}

static void dispatch(struct req *r, const struct pb_app *app)
{
	char token_id[PB_ID_BUF] = "";
	if (answer_web_server_error(r))
		return;
	sbuf allow;
	int rc, status;
	bool in_read = false;
	sbuf_init(&allow, 256);
	switch (router_match(app->routes, app->nroutes, r->method, r->segs, r->nsegs, &r->route,
			     r->captures, &r->ncaptures, &allow)) {
	case ROUTE_NOT_FOUND:
		answer(r, app, 404, "not_found", "no such endpoint: %.200s", r->path);
		goto out;
	case ROUTE_BAD_METHOD:
		req_header(r, "Allow", sbuf_str(&allow));
		answer(r, app, 405, "method_not_allowed", "%s is not allowed here (allowed: %s)", r->method,
		       sbuf_str(&allow));
		goto out;
	case ROUTE_FOUND:
		break;
	}
	/* a feature that is off looks like it does not exist, before anything else is checked */
	static const struct { unsigned flag; const char *what, *setting; } features[] = {
		{ ROUTE_FEATURE_POWERBI_WEB, "Power BI publishing", "set APPLICATION_POWERBI_WEB_ENABLED=true" },
		{ ROUTE_FEATURE_INGESTIONS, "Ingestion", "set APPLICATION_INGESTIONS_ENABLED=true" },
		{ ROUTE_FEATURE_SSO, "Signing in with Microsoft",
		  "set PBIPORT_SSO_TENANT_ID, PBIPORT_SSO_CLIENT_ID and PBIPORT_SSO_CLIENT_SECRET" },
	};
	const bool on[] = { r->cfg->powerbi_web_enabled, r->cfg->ingestions_enabled, r->cfg->sso_signin };
	for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
		if ((r->route->flags & features[i].flag) && !on[i]) {
			answer(r, app, 404, "feature_disabled", "%s is turned off on this server (%s)", features[i].what,
			       features[i].setting);
			goto out;
		}
	if (!(r->route->flags & ROUTE_NO_DATABASE) && (rc = database_ready(r))) {
		reply_rc(r, app, rc);
		goto out;
	}
	/* this process's own unwritten counts are part of what /metrics shows */
	if ((r->route->flags & ROUTE_METRICS_FLUSH) && r->db && metrics_flush(r->db, r->err))
		log_event("warn", r->request_id, "metrics not written: %s", r->err);
	if ((r->route->flags & ROUTE_READ_ONLY) && r->db) {
		if ((rc = db_read_begin(r->db, r->err))) {
			reply_rc(r, app, rc);
			goto out;
		}
		in_read = true;
		if (r->route->role != PB_ROLE_NONE) {
			/* the identity's lookup stands alone: a GET answered from what it read (a kept
			 * answer, handlers/data_products.c) sends no BEGIN or COMMIT */
			db_read_first_alone(r->db);
			prefetch(r, app, token_id);
		}
	}
	if (r->route->role != PB_ROLE_NONE && identify(r, app))
		goto out;
	remember_org(r, token_id);
	if (check_query(r, app))
		goto out;
	size_t limit = r->route->body_limit == ROUTE_BODY_CONFIG ? r->cfg->max_body : r->route->body_limit;
	if (r->db)
		db_idle(r->db);   /* the body may be slow to come: no snapshot is held meanwhile */
	if (((r->route->flags & ROUTE_STREAM_BODY) ? req_stream_body : req_read_body)(
		    r, limit, r->route->content_types, r->route->flags & ROUTE_EMPTY_BODY_OK, &status, r->err)) {
		static const struct { int status; const char *code; } codes[] = {
			{ 400, "bad_request" }, { 411, "length_required" },
			{ 413, "payload_too_large" }, { 415, "unsupported_media_type" },
		};
		const char *code = "bad_request";
		for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
			if (codes[i].status == status)
				code = codes[i].code;
		answer(r, app, status ? status : 400, code, "%s", r->err);
		goto out;
	}
	r->err[0] = '\0';
	/* A state-changing request with the browser's own credentials comes from this site only; a
	 * page's form also carries the token its page signed (runtime/page_csrf.h). */
	if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD") &&
	    (rc = (r->route->flags & ROUTE_PAGE) ? page_csrf_check(r) : page_cross_site_check(r))) {
		reply_rc(r, app, rc);
		goto out;
	}
	rc = r->route->handler(r);
	if (rc)
		reply_rc(r, app, rc);
	else if (!r->status)
		answer(r, app, 500, "internal", "the handler produced no response");
out:
	if (in_read)   /* the next request's first statement carries its COMMIT; the accept loop's
			* idle moment sends it when none comes */
		db_read_end_later(r->db);
	if (r->db)
		session_seen(r, app);
	sbuf_release(&allow);
}

void pb_handle(struct req *r, const struct pb_app *app, char *const *envp, const struct req_io *io)
{
	if (req_load(r, envp, io, r->err))
		req_reply_error(r, 400, "bad_request", "%s", r->err);
	else
		dispatch(r, app);
	if (req_send(r))
		log_event("warn", r->request_id, "%s", r->err);
}

void pb_after(struct req *r)
{
	struct timespec now;
	char err[PB_ERR_MAX];
	clock_gettime(CLOCK_MONOTONIC, &now);
	double secs = (double)(now.tv_sec - r->started.tv_sec) + (double)(now.tv_nsec - r->started.tv_nsec) / 1e9;
	log_request(r, secs);
	if (r->db && (metrics_count(r->db, r->route ? r->route->pattern : "unmatched",
				    r->method ? r->method : "-", r->status, secs, err) ||
		      (metrics_due() && metrics_flush(r->db, err))))
		log_event("warn", r->request_id, "metrics not recorded: %s", err);
}

/* Writes the counts that wait in this process (runtime/metrics.h); a failure is logged and
 * the counts wait for the next try. */
static void flush_metrics(pb_db *db)
{
	char err[PB_ERR_MAX];
	if (db && metrics_pending() && metrics_flush(db, err))
		log_event("warn", NULL, "metrics not written: %s", err);
}

/* ---- I/O over libfcgi streams and over stdio ---- */

struct fcgx_streams {
	FCGX_Stream *in, *out;
};

static long fcgx_read(void *ctx, char *buf, size_t n)
{
	int chunk = n > 1 << 20 ? 1 << 20 : (int)n;
	return FCGX_GetStr(buf, chunk, ((struct fcgx_streams *)ctx)->in);
}

static int fcgx_write(void *ctx, const char *buf, size_t n)
{
	FCGX_Stream *out = ((struct fcgx_streams *)ctx)->out;
	while (n) {
		int chunk = n > 1 << 20 ? 1 << 20 : (int)n;
		if (FCGX_PutStr(buf, chunk, out) != chunk)
			return -1;
		buf += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

static long stdio_read(void *ctx, char *buf, size_t n)
{
	(void)ctx;
	size_t got = fread(buf, 1, n, stdin);
	return got == 0 && ferror(stdin) ? -1 : (long)got;
}

static int stdio_write(void *ctx, const char *buf, size_t n)
{
	(void)ctx;
	return fwrite(buf, 1, n, stdout) == n ? 0 : -1;
}

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
	FCGX_ShutdownPending();
}

static int serve_fastcgi(const struct pb_app *app, struct req *r)
{
	FCGX_Request fr;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;   /* no SA_RESTART: accept returns so the loop can end */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (FCGX_Init() || FCGX_InitRequest(&fr, 0, FCGI_FAIL_ACCEPT_ON_INTR)) {
		fprintf(stderr, "pbiport: cannot initialize FastCGI\n");
		return 1;
	}
	/* A non-blocking listening socket tells this process when no request waits for it (accept
	 * answers EAGAIN): that idle moment is when the batched metrics and log lines are written, and poll()
	 * then waits for the next connection. Accepted connections do not inherit O_NONBLOCK. */
	int lflags = fcntl(0, F_GETFL);
	if (lflags < 0 || fcntl(0, F_SETFL, lflags | O_NONBLOCK) < 0) {
		fprintf(stderr, "pbiport: cannot set up the FastCGI socket: %s\n", strerror(errno));
		return 1;
	}
	log_batch_requests(true);   /* written when no request waits: log_flush below */
	while (!stopping) {
		int arc = FCGX_Accept_r(&fr);
		if (arc == -EAGAIN || arc == -EWOULDBLOCK || arc == -EINTR) {
			struct pollfd pfd = { .fd = 0, .events = POLLIN };
			flush_metrics(r->db);
			db_idle(r->db);
			log_flush();
			if (!stopping && poll(&pfd, 1, -1) < 0 && errno != EINTR)
				break;
			continue;
		}
		if (arc < 0)
			break;
		struct fcgx_streams streams = { fr.in, fr.out };
		struct req_io io = { fcgx_read, fcgx_write, &streams };
		pb_handle(r, app, fr.envp, &io);
		/* the web server has the whole response before we log and count it */
		FCGX_Finish_r(&fr);
		pb_after(r);
		req_reset(r);
	}
	log_batch_requests(false);
	FCGX_Free(&fr, 1);
	return 0;
}

static int serve_cgi(const struct pb_app *app, struct req *r)
{
	struct req_io io = { stdio_read, stdio_write, NULL };
	pb_handle(r, app, environ, &io);
	int rc = fflush(stdout) ? 1 : 0;
	pb_after(r);
	req_reset(r);
	flush_metrics(r->db);
	return rc;
}

int pb_serve(const struct pb_app *app)
{
	pb_config cfg;
	pb_db *db = NULL;
	struct req r;
	char err[PB_ERR_MAX];
	int code = 1;
	bool have_cfg = false, have_req = false;

	if (config_load(&cfg, err))
		goto fail;
	have_cfg = true;
	if (router_check_table(app->routes, app->nroutes, err))
		goto fail;
	int rc = open_database(&cfg, &db, err);
	if (rc == PB_EUNAVAIL)   /* requests answer 503 until it is back: database_ready */
		log_event("warn", NULL, "%s: answering 503 until the database can be reached", err);
	else if (rc)
		goto fail;
	signal(SIGPIPE, SIG_IGN);   /* a client gone mid-response is an error return, not a death */
	req_init(&r, &cfg, db);
	have_req = true;
	code = FCGX_IsCGI() ? serve_cgi(app, &r) : serve_fastcgi(app, &r);
	goto out;
fail:
	fprintf(stderr, "pbiport: %s\n", err);
out:
	if (have_req) {
		db = r.db;   /* the one opened late, if so (database_ready) */
		req_release(&r);
	}
	flush_metrics(db);   /* SIGTERM: nothing counted is lost */
	metrics_forget();
	db_close(db);
	if (have_cfg)
		config_release(&cfg);
	return code;
}

/* GET /powerbi/connect and GET /powerbi/callback: a user's delegated Power BI consent. The
 * flow (PKCE, signed single-use state, code exchange, sealed tokens) is
 * core/flow/powerbi_connect.h; here are the redirects. Nothing here logs or echoes a token,
 * code or verifier. */
#include <stdlib.h>
#include <string.h>

#include "core/flow/powerbi_connect.h"
#include "handlers/handlers.h"
#include "runtime/page_csrf.h"
#include "runtime/page_render.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"

int site_url(struct req *r, const char *path, char **out)
{
	char origin[PB_ORIGIN_MAX];
	sbuf sb;
	*out = NULL;
	/* without PBIPORT_PUBLIC_URL: the address the browser used; Entra only accepts registered
	 * redirect URIs, so a forged Host header cannot divert a code */
	int rc = r->cfg->public_url ? PB_OK : page_own_origin(r, origin, r->err);
	if (rc)
		return rc;
	sbuf_init(&sb, PB_RETURN_TO_MAX + 256);
	if (sbuf_addf(&sb, "%s%s", r->cfg->public_url ? r->cfg->public_url : origin, path)) {
		sbuf_release(&sb);
		return pb_err(r->err, PB_ELIMIT, "URL too long");
	}
	*out = sbuf_detach(&sb, NULL);
	return *out ? PB_OK : pb_err(r->err, PB_ENOMEM, "out of memory");
}

int powerbi_redirect_uri(struct req *r, char **out)
{
	return site_url(r, "/powerbi/callback", out);
}

/* Replies with a redirect that no cache keeps. */
static int redirect_to(struct req *r, const char *location)
{
	if (req_header(r, "Location", location) || req_header(r, "Cache-Control", "no-store"))
		return req_fail(r, PB_EINVAL, NULL, "unusable redirect target");
	return req_reply(r, 302, "text/plain; charset=utf-8", NULL, 0);
}

int api_powerbi_connect(struct req *r)
{
	char *redirect_uri = NULL, *url = NULL;
	int rc = powerbi_redirect_uri(r, &redirect_uri);
	if (!rc) {
		connect_start in = { .return_to = req_query(r, "return_to"), .prompt = req_query(r, "prompt"),
				     .login_hint = req_query(r, "login_hint"), .redirect_uri = redirect_uri };
		rc = connect_begin(r->db, r->cfg, r->who.org_id, r->who.user_id, &in, &url, &r->fail);
	}
	if (!rc)
		rc = redirect_to(r, url);
	free(redirect_uri);
	free(url);
	return rc;
}

int api_powerbi_callback(struct req *r)
{
	char *return_to = NULL;
	connect_answer in = { .state = req_query(r, "state"), .code = req_query(r, "code"), .error = req_query(r, "error"),
			      .error_description = req_query(r, "error_description") };
	int rc = connect_finish(r->db, r->cfg, r->who.org_id, r->who.user_id, &in, &return_to, &r->fail);
	if (!rc)
		rc = redirect_to(r, return_to);
	else if (page_wants_html(r))   /* a browser: a page saying why, with the way back */
		rc = pages_connect_failed(r, rc, return_to);
	free(return_to);
	return rc;
}

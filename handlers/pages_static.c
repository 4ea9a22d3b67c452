/* GET /static/{name}: the pages' stylesheet, script and images, from web/static/ on the
 * template search path (an admin's folder first: runtime/page_render.h). No other host is
 * ever asked for anything. An ETag lets a browser revalidate with a 304 after
 * PB_STATIC_MAX_AGE_S. */
#include <stdlib.h>
#include <string.h>

#include "handlers/handlers.h"
#include "runtime/crypto.h"
#include "runtime/util.h"

#define ETAG_HEX 20   /* 80 bits of the content's SHA-256 */

/* Whether an If-None-Match header value lists etag (or is "*"). */
static bool etag_matches(const char *header, const char *etag)
{
	if (!header)
		return false;
	for (const char *p = header; *p;) {
		p += strspn(p, " \t,");
		if (!strncmp(p, "W/", 2))
			p += 2;
		size_t n = strcspn(p, " \t,");
		if ((n == 1 && *p == '*') || (n == strlen(etag) && !strncmp(p, etag, n)))
			return true;
		p += n;
	}
	return false;
}

int pages_static(struct req *r)
{
	char *path = NULL, *data = NULL;
	const char *type = NULL;
	char hex[PB_SHA256_HEX_LEN + 1], etag[ETAG_HEX + 3], cache[48];
	size_t len = 0;
	int rc = page_static_find(r->cfg, req_capture(r, "name"), &path, &type, r->err);
	if (!rc)
		rc = read_file(path, PB_STATIC_MAX_BYTES, &data, &len, r->err);
	if (rc)
		goto out;
	pb_sha256_hex(data, len, hex);
	xsnprintf(etag, sizeof etag, "\"%.*s\"", ETAG_HEX, hex);
	xsnprintf(cache, sizeof cache, "public, max-age=%d", PB_STATIC_MAX_AGE_S);
	if (etag_matches(req_env(r, "HTTP_IF_NONE_MATCH"), etag))
		rc = req_reply(r, 304, type, NULL, 0);
	else
		rc = req_reply(r, 200, type, data, len);
	if (!rc)
		rc = req_header(r, "ETag", etag);
	if (!rc)
		rc = req_header(r, "Cache-Control", cache);
	if (!rc)
		rc = page_headers(r);
out:
	free(data);
	free(path);
	return rc;
}

#include "runtime/router.h"

#include <string.h>

#include "runtime/util.h"

/* Next pattern segment starting at *p (after a '/'); sets *len. */
static const char *next_seg(const char **p, size_t *len)
{
	const char *s = *p;
	if (*s == '/')
		s++;
	const char *e = strchr(s, '/');
	*len = e ? (size_t)(e - s) : strlen(s);
	*p = s + *len;
	return s;
}

static bool is_capture(const char *s, size_t len)
{
	return len > 2 && s[0] == '{' && s[len - 1] == '}';
}

/* Does pattern match segs? Fills captures when it does. */
static bool pattern_match(const char *pattern, char *const *segs, size_t nsegs,
			  const char *captures[PB_ROUTE_MAX_CAPTURES], size_t *ncaptures)
{
	/* most patterns differ from the path in their first letter: no need to read them further
	 * (a literal segment is never empty, so "" cannot match one either) */
	if (nsegs && pattern[1] && pattern[1] != '{' && pattern[1] != segs[0][0])
		return false;
	const char *p = strcmp(pattern, "/") ? pattern : "";   /* "/" is the path of no segments */
	size_t i = 0, nc = 0;
	while (*p) {
		size_t len;
		const char *s = next_seg(&p, &len);
		if (i == nsegs)
			return false;
		if (is_capture(s, len)) {
			if (!segs[i][0] || nc == PB_ROUTE_MAX_CAPTURES)
				return false;
			captures[nc++] = segs[i];
		} else if (strlen(segs[i]) != len || memcmp(segs[i], s, len)) {
			return false;
		}
		i++;
	}
	if (i != nsegs)
		return false;
	*ncaptures = nc;
	return true;
}

enum route_match router_match(const struct route *routes, size_t nroutes, const char *method,
			      char *const *segs, size_t nsegs, const struct route **out,
			      const char *captures[PB_ROUTE_MAX_CAPTURES], size_t *ncaptures,
			      sbuf *allow)
{
	const char *caps[PB_ROUTE_MAX_CAPTURES];
	size_t nc = 0;
	bool path_known = false;
	*out = NULL;
	*ncaptures = 0;
	if (allow)
		sbuf_reset(allow);
	for (size_t i = 0; i < nroutes; i++) {
		if (!pattern_match(routes[i].pattern, segs, nsegs, caps, &nc))
			continue;
		if (!strcmp(routes[i].method, method)) {
			*out = &routes[i];
			memcpy(captures, caps, nc * sizeof caps[0]);
			*ncaptures = nc;
			return ROUTE_FOUND;
		}
		path_known = true;
		/* the Allow list: each method once, in table order */
		if (allow) {
			bool seen = false;
			for (size_t j = 0; j < i && !seen; j++)
				seen = !strcmp(routes[j].method, routes[i].method) &&
				       pattern_match(routes[j].pattern, segs, nsegs, caps, &nc);
			if (!seen && (allow->len ? sbuf_adds(allow, ", ") : 0) == 0)
				sbuf_adds(allow, routes[i].method);
		}
	}
	return path_known ? ROUTE_BAD_METHOD : ROUTE_NOT_FOUND;
}

int router_capture_index(const char *pattern, const char *name)
{
	const char *p = pattern;
	size_t nlen = strlen(name);
	int idx = 0;
	while (*p) {
		size_t len;
		const char *s = next_seg(&p, &len);
		if (!is_capture(s, len))
			continue;
		if (len - 2 == nlen && !memcmp(s + 1, name, nlen))
			return idx;
		idx++;
	}
	return -1;
}

int router_check_table(const struct route *routes, size_t nroutes, char *err)
{
	for (size_t i = 0; i < nroutes; i++) {
		const struct route *rt = &routes[i];
		if (!rt->method || !rt->pattern || rt->pattern[0] != '/' || !rt->handler)
			return pb_err(err, PB_EINTERNAL, "route %zu: method, pattern and handler are required", i);
		int ncap = 0;
		const char *p = rt->pattern;
		while (*p) {
			size_t len;
			const char *s = next_seg(&p, &len);
			if (len == 0 && *p)
				return pb_err(err, PB_EINTERNAL, "route %s: empty segment", rt->pattern);
			ncap += is_capture(s, len);
			if (memchr(s, '{', len) && !is_capture(s, len))
				return pb_err(err, PB_EINTERNAL, "route %s: a capture must be a whole segment",
					      rt->pattern);
		}
		if (ncap > PB_ROUTE_MAX_CAPTURES)
			return pb_err(err, PB_EINTERNAL, "route %s: more than %d captures", rt->pattern,
				      PB_ROUTE_MAX_CAPTURES);
		if (rt->body_limit && !rt->content_types)
			return pb_err(err, PB_EINTERNAL, "route %s %s: a body needs content types",
				      rt->method, rt->pattern);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(routes[j].method, rt->method) && !strcmp(routes[j].pattern, rt->pattern))
				return pb_err(err, PB_EINTERNAL, "route %s %s: listed twice", rt->method,
					      rt->pattern);
	}
	return PB_OK;
}

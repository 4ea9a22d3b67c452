#include "runtime/json_body.h"

#include <jansson.h>
#include <string.h>

#include "runtime/strbuf.h"
#include "runtime/util.h"

int json_depth_check(const char *text, size_t len, int max_depth, char *err)
{
	int depth = 0, line = 1, col = 0;
	bool in_string = false, escaped = false;
	if (max_depth <= 0)
		max_depth = PB_JSON_MAX_DEPTH;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		col++;
		if (c == '\n') {
			line++;
			col = 0;
		}
		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return pb_err(err, PB_ELIMIT, "line %d, column %d: nested deeper than %d levels",
					      line, col, max_depth);
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return PB_OK;
}

int json_body_parse(const char *text, size_t len, int max_depth, json_t **out, char *err)
{
	json_error_t je;
	*out = NULL;
	int rc = json_depth_check(text, len, max_depth, err);
	if (rc)
		return rc;
	if (len && memchr(text, '\0', len))
		return pb_err(err, PB_EINVAL, "NUL byte in JSON text");
	json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!v) {
		/* jansson reports "end of file expected" etc.; keep its words with our position format */
		return pb_err(err, json_error_code(&je) == json_error_out_of_memory ? PB_ENOMEM : PB_EINVAL,
			      "line %d, column %d: %s", je.line, je.column, je.text);
	}
	*out = v;
	return PB_OK;
}

int json_body_only_keys(const json_t *obj, const char *const *allowed, const char *prefix, char *err)
{
	const char *key;
	json_t *val;
	if (!json_is_object(obj))
		return pb_err(err, PB_EINVAL, "%s%sexpected an object", prefix ? prefix : "",
			      prefix && *prefix ? ": " : "");
	json_object_foreach((json_t *)obj, key, val) {
		bool ok = false;
		for (size_t i = 0; allowed && allowed[i] && !ok; i++)
			ok = !strcmp(key, allowed[i]);
		if (ok)
			continue;
		sbuf list;
		sbuf_init(&list, PB_ERR_MAX);
		for (size_t i = 0; allowed && allowed[i]; i++)
			if ((i && sbuf_adds(&list, ", ")) || sbuf_adds(&list, allowed[i]))
				break;
		int rc = pb_err(err, PB_EINVAL, "unknown field '%s%s%.80s' (allowed: %s)",
				prefix ? prefix : "", prefix && *prefix ? "." : "", key, sbuf_str(&list));
		sbuf_release(&list);
		return rc;
	}
	return PB_OK;
}

int json_media_type(const char *mt)
{
	if (!mt)
		return 0;
	size_t n = strlen(mt);
	return !strcmp(mt, "application/json") ||
	       (!strncmp(mt, "application/", 12) && n > 17 && !strcmp(mt + n - 5, "+json"));
}


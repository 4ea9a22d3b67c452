/* JSON request bodies, validated at the edge (STYLE habit 7).
 *
 * Parsing refuses duplicate keys (JSON_REJECT_DUPLICATES), nesting deeper than a
 * limit (checked on the text before jansson builds anything), and trailing data;
 * errors carry the position: "line 3, column 14: ...". Unknown fields are refused by
 * json_body_only_keys() so a typo is an error, not a silently ignored setting.
 *
 * YAML bodies go through core/lang/yamltree.h (same tree shape, same error format); this
 * module stays free of domain code. */
#ifndef PBIPORT_JSON_BODY_H
#define PBIPORT_JSON_BODY_H

#include <stddef.h>

struct json_t;

/* *out is new (caller json_decref()s). PB_EINVAL with the position, PB_ELIMIT when
 * nested deeper than max_depth (0 means PB_JSON_MAX_DEPTH), PB_ENOMEM. */
int json_body_parse(const char *text, size_t len, int max_depth, struct json_t **out, char *err);

/* Nesting check on raw text: PB_ELIMIT with line and column of the first too-deep
 * bracket. Strings (with escapes) are skipped. */
int json_depth_check(const char *text, size_t len, int max_depth, char *err);

/* PB_EINVAL "unknown field 'x' (allowed: a, b)" when obj (an object) has a key not in
 * allowed (NULL-terminated). prefix names the object in the message ("" for the root). */
int json_body_only_keys(const struct json_t *obj, const char *const *allowed, const char *prefix,
			char *err);

/* True for "application/json" and "application/<x>+json". */
int json_media_type(const char *media_type);

#endif

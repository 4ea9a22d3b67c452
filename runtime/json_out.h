/* JSON text from a jansson value, written straight into an sbuf.
 *
 * The output is byte for byte what json_dumps(v, flags | JSON_ENCODE_ANY) gives for the
 * flags pbiport uses (JSON_COMPACT, JSON_REAL_PRECISION(n); objects in insertion order), at a
 * fraction of its cost: runs of plain bytes are copied at once instead of one UTF-8 code point
 * per callback. Every response and log line goes through here, so it is on the hot path of each
 * request. Reals are rare and are formatted by jansson itself, so their text cannot drift.
 * Strings inside a json_t are valid UTF-8 (jansson checks them when they are made). */
#ifndef PBIPORT_JSON_OUT_H
#define PBIPORT_JSON_OUT_H

#include <jansson.h>
#include <stddef.h>

#include "runtime/strbuf.h"

/* Appends v as JSON text. flags: JSON_COMPACT is assumed (no other layout is written);
 * JSON_REAL_PRECISION(n) applies to reals. Returns 0, or -1 when out would pass its ceiling,
 * on no memory, or when v nests deeper than PB_JSON_OUT_MAX_DEPTH (out then holds a prefix). */
int json_out(sbuf *out, const json_t *v, size_t flags);

/* Appends s[0..len) as a JSON string literal with quotes, escaped as jansson escapes. */
int json_out_string(sbuf *out, const char *s, size_t len);

#endif

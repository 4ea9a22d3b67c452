/* JSON text from a jansson value, written straight into an sbuf.
 *
 * The output is byte for byte what json_dumps(v, flags | JSON_ENCODE_ANY) gives for the
 * flags pbiport uses (JSON_COMPACT, JSON_REAL_PRECISION(n); objects in insertion order), at a
 * fraction of its cost: runs of plain bytes are copied at once instead of one UTF-8 code point
 * per callback. Every response and log line goes through here, so it is on the hot path of each
 * request. One difference, on purpose: without JSON_REAL_PRECISION a real is written as the
 * shortest text that reads back as the same double (json_out_double: 2.002), where json_dumps
 * writes 17 digits (2.0019999999999998). With JSON_REAL_PRECISION(n) jansson formats it.
 * Strings inside a json_t are valid UTF-8 (jansson checks them when they are made). */
#ifndef PBIPORT_JSON_OUT_H
#define PBIPORT_JSON_OUT_H

#include <jansson.h>
#include <stddef.h>

#include "runtime/strbuf.h"

/* Appends v as JSON text. flags: JSON_COMPACT is assumed (no other layout is written);
 * JSON_REAL_PRECISION(n) (n up to 17) applies to reals. Returns 0, or -1 when out would pass its ceiling,
 * on no memory, or when v nests deeper than PB_JSON_OUT_MAX_DEPTH (out then holds a prefix). */
int json_out(sbuf *out, const json_t *v, size_t flags);

/* Writes a finite double as JSON: the shortest of %.15g, %.16g, %.17g that reads back as d
 * (the way JSON encoders in other languages write numbers), in jansson's spelling (a ".0"
 * added to integral values, exponents without "+" or leading zeros: 1e300, 1e-5). Returns the
 * length, or -1 for NaN and infinities (which JSON cannot carry). */
#define JSON_OUT_DOUBLE_MAX 32
int json_out_double(double d, char buf[JSON_OUT_DOUBLE_MAX]);

/* Appends item (new; NULL when building it failed) to the list *list that an answer shows, or
 * drops the list (*list = NULL) when that fails: such a list is whole or not there at all, never
 * answered with a row missing. Takes item either way. */
void json_out_list_add_new(json_t **list, json_t *item);

/* The same for JSON_REAL_PRECISION(precision) (1..17): jansson's "%.<precision>g" spelling. */
int json_out_double_prec(double d, int precision, char buf[JSON_OUT_DOUBLE_MAX]);

/* Appends stored JSON text as it is when it is exactly what json_out would write for the value
 * it reads back as: an object whose members are strings or such objects (distinct keys, no
 * whitespace, strings escaped as json_out_string escapes them, valid UTF-8). Returns 0 when
 * appended, 1 when the text is not in that form (nothing appended: parse it and json_out the
 * value instead), -1 when out would pass its ceiling. Text pbiport stored with json_dumps or
 * json_out (JSON_COMPACT) is in that form. */
int json_out_as_is(sbuf *out, const char *text, size_t len);

/* Appends s[0..len) as a JSON string literal with quotes, escaped as jansson escapes. */
int json_out_string(sbuf *out, const char *s, size_t len);

#endif

/* A YAML document as a jansson tree, so the contract reader walks one kind of tree
 * whether the contract came as YAML or JSON.
 *
 * Scalars follow the YAML 1.2 core schema, except that plain floats stay strings
 * (`version: 1.10` must not become 1.1): plain null/~/empty -> null, true/false ->
 * boolean, decimal integers -> integer, everything else (and every quoted or block
 * scalar, or one tagged !!str) -> string. Anchors and aliases work (an alias shares
 * the anchored value); merge keys (`<<: *base`) copy keys the mapping does not set.
 *
 * Refused with `SOURCE:LINE:COL: message` (1-based): syntax errors, duplicate mapping
 * keys, non-scalar keys, NUL characters, more than one document, nesting deeper than
 * PB_CONTRACT_MAX_DEPTH, and more than PB_CONTRACT_MAX_NODES values (aliases counted
 * as expanded, which stops "billion laughs" documents). */
#ifndef PBIPORT_YAMLTREE_H
#define PBIPORT_YAMLTREE_H

#include <stddef.h>

struct json_t;

/* Parses text[0..len). On success *out is new (caller json_decref()s); an empty
 * document gives a JSON null. Returns PB_OK, PB_EINVAL, PB_ELIMIT or PB_ENOMEM. */
int yamltree_load(const char *text, size_t len, const char *source, struct json_t **out, char *err);

#endif

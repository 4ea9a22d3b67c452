/* Comparing and merging semantic-model definitions: what updating a published model in place,
 * and its drift, are built on (docs/lifecycle.md).
 *
 * A definition is a set of TMDL files (pb_files, core/lang/render.h): what the templates render
 * for a contract now, what they rendered at the last publish or update, or what Fabric's
 * getDefinition returns for the live model (converted by the caller). Both sides are read with
 * the TMDL reader (core/lang/tmdl.h).
 *
 * Objects pbiport generates carry the annotation MODEL_DIFF_GENERATED (the TMDL templates write
 * it on the model, every table, column, partition and relationship they make). Everything
 * without it (measures, calculated columns, hierarchies, perspectives, roles, cultures, tables
 * an analyst added in Power BI) is "kept": never compared, never removed, carried over as it
 * is by model_merge().
 *
 * The diff (model_diff) is JSON:
 *   {"changes": [{"object": "model"|"table"|"column"|"relationship"|"partition",
 *                 "table": name (absent for model and relationship),
 *                 "name": the object's name (a relationship: its name),
 *                 "change": "added"|"removed"|"changed",
 *                 "breaking": true|false,
 *                 "before": {property: value, ...} | null,   (null when added)
 *                 "after":  {property: value, ...} | null}], (null when removed)
 *    "kept": [{"object": "measure"|"column"|"hierarchy"|"table"|..., "table": name?, "name": name}],
 *    "blocking": [{"object": kept object's kind, "table", "name", "refers_to": {"table", "column"}}],
 *    "summary": {"added": n, "removed": n, "changed": n, "breaking": bool, "structure_changed": bool}}
 * Compared properties: a table's description and hidden flag; a column's dataType,
 * formatString, description, isHidden, isKey, sourceColumn, summarizeBy; a relationship's
 * from/to columns, cardinality and cross-filtering; a partition's mode and its M (source);
 * the model's culture and properties the templates set. "before"/"after" hold only those.
 * Breaking: a removed table or column, a changed column dataType, a removed relationship.
 * Blocking: a kept object whose DAX (measure, calculated column, calculated table) names a
 * column or table the change removes (Table[Column], 'Table'[Column], [Column] in its own
 * table).
 * Changes are ordered: model, then tables in `want`'s order (removed ones after), each table's
 * columns and partition, then relationships; names compared case-insensitively as Power BI does.
 *
 * Errors: PB_EINVAL with "FILE:LINE: message" when a side does not parse, PB_ENOMEM, PB_ELIMIT
 * past the TMDL reader's ceilings. */
#ifndef PBIPORT_MODEL_DIFF_H
#define PBIPORT_MODEL_DIFF_H

#include "core/lang/render.h"

struct json_t;

/* The annotation pbiport's templates put on what they generate (value "true"). */
#define MODEL_DIFF_GENERATED "PBIPORT_Generated"

/* The diff of `want` (the definition that should be) against `have` (the one that is). *out is a
 * new reference the caller releases. */
int model_diff(const pb_files *want, const pb_files *have, struct json_t **out, char *err);

/* The definition to upload so that the model becomes `want` while what an analyst added to
 * `have` stays: want's files, plus every kept object of have put back (a kept measure, calculated
 * column or hierarchy into its table's file when that table is still there; a kept table,
 * perspective, role or culture as its own file; the model file's refs to them). A kept object
 * whose table `want` removes goes with it only when allow_breaking; otherwise PB_ECONFLICT
 * naming both (the same pairs as "blocking"). *out is new; release with pb_files_release. */
int model_merge(const pb_files *want, const pb_files *have, bool allow_breaking, pb_files *out, char *err);

#endif

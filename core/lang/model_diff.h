/* Comparing and merging semantic-model definitions: what updating a published model in place,
 * and its drift, are built on (docs/lifecycle.md).
 *
 * A definition is a set of TMDL files (pb_files, core/lang/render.h): what the templates render
 * for a contract now, what they rendered at the last publish or update, or what Fabric's
 * getDefinition returns for the live model (converted by the caller; any order of files). Both
 * sides are read with the TMDL reader (core/lang/tmdl.h); names of the two sides are matched as
 * Power BI matches them (core/lang/names.h: without case, after Unicode normalization).
 *
 * Whose objects are whose. pbiport's templates put the annotation MODEL_DIFF_GENERATED on the
 * model, every table, column, partition, relationship and expression (parameter) they make.
 *  - An object of `have` is pbiport's ("generated") when it carries the annotation, or when
 *    `want` has a generated object of the same kind and name (so a model published before the
 *    annotation existed, or one whose annotation someone deleted, is adopted). Inside a
 *    generated table, data columns (no DAX) and partitions are pbiport's even without it:
 *    they come from the table's M query, which pbiport owns.
 *  - Everything else in `have` is "kept": measures, calculated columns, hierarchies, tables,
 *    relationships, expressions, roles, perspectives, cultures... an analyst added in Power BI.
 *    Kept objects are never compared and never removed; model_merge carries them over.
 *  - An object of `want` without the annotation (an admin's template object that pbiport
 *    need not own) is written when `have` lacks it; once `have` has an object of that kind
 *    and name, have's copy wins (analysts may change it) and want's is left out.
 *
 * The diff (model_diff) is JSON:
 *   {"changes": [{"object": "model"|"table"|"column"|"partition"|"relationship"|"expression"|
 *                           another kind (a generated measure, role...),
 *                 "table": name (columns, partitions and other table members only),
 *                 "name": the object's name,
 *                 "change": "added"|"removed"|"changed",
 *                 "breaking": true|false,
 *                 "before": {property: value, ...} | null,   (null when added)
 *                 "after":  {property: value, ...} | null,   (null when removed)
 *                 "properties": [names of the properties that differ]}],   ("changed" only)
 *    "kept": [{"object": "measure"|"column"|"hierarchy"|"table"|"role"|..., "table": name (a
 *              table member), "name": name}],   every analyst object found in `have`
 *    "blocking": [{"object": the kept object's kind, "table": its table (a table member),
 *                  "name": its name, "refers_to": {"table": name, "column": name (absent for a
 *                  whole table)}, "via": see below}],
 *    "summary": {"added": n, "removed": n, "changed": n, "breaking": bool,
 *                "structure_changed": bool}}
 * Compared properties ("before"/"after" hold exactly these):
 *   model: the `:` properties want's model sets (culture, sourceQueryCulture, ...);
 *   table: description, isHidden;
 *   column: dataType, formatString, description, isHidden, isKey, isNullable, sourceColumn,
 *           summarizeBy (absent = "default"), expression (a calculated column);
 *   partition: sourceType, mode (absent = "import"), source (its M), entity fields;
 *   relationship: fromTable, fromColumn, toTable, toColumn, fromCardinality, toCardinality,
 *                 crossFilteringBehavior, isActive;
 *   expression: expression (its M with `meta`), description;
 *   another kind: expression, description and its `:` properties but lineageTag.
 * An added or removed table is one change (its columns are not listed one by one).
 * Breaking: a removed table, column or relationship; a column's changed dataType.
 * structure_changed (the data must be refreshed): a table, column, partition, relationship
 * or expression added or removed; a column's dataType, sourceColumn or expression, a
 * partition, a relationship or an expression changed. Descriptions, formats, hidden, key,
 * summarizeBy and model properties do not count.
 * A column renamed in Power BI is a removed generated column (breaking) and the contract's
 * column added back: an update renames it back.
 * Changes are ordered: model, then tables in `want`'s order (removed ones after, in have's),
 * each followed by its columns, partitions and other members (want's order, removed after);
 * then relationships, expressions and other kinds in the same way.
 *
 * Blocking: a kept object that needs something the change removes, with "via":
 *   "dax"             its DAX (measure, calculated column or table, calculation item, role
 *                     filter, KPI, format string expression) names a removed column or table:
 *                     Table[Column], 'Table'[Column], [Column] in its own table, a bare table
 *                     name (not in strings, comments, or a VAR's name). With allow_breaking it
 *                     is kept (Power BI shows the error on it).
 *   "perspective", "permission"  a perspective or a role's column permission lists it: kept.
 *   "relationship"    a kept relationship joins on it: dropped with allow_breaking.
 *   "hierarchy_level" a level of a kept hierarchy is it: the hierarchy is dropped.
 *   "sort_by"         a kept column sorts by it: that column is dropped.
 *   "table_removed"   the kept object is a member of a table `want` removes: it goes with it.
 *   "name_clash"      the kept member has the name of a column, measure or hierarchy `want`
 *                     adds to its table: never merged, whatever allow_breaking says.
 *
 * Errors: PB_EINVAL with "FILE:LINE: message" (FILE: the pb_file path) when a side does not
 * parse, PB_ENOMEM, PB_ELIMIT past the TMDL reader's ceilings. */
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
 * `have` stays. It is want's files as they are (an unannotated want object that have's copy
 * replaces taken out), plus every kept object of have copied as the lines it takes in its
 * file, byte for byte (a measure keeps its DAX, format, lineage tag, annotations, layout):
 *  - a member of a generated table that stays (measure, calculated column, hierarchy...) at
 *    the end of that table's declaration in want's file;
 *  - a top-level object (table, role, perspective, culture, relationship, expression...) at
 *    the end of want's file of the same path, else in have's file taken whole when the file
 *    holds only kept objects (tables/, roles/, perspectives/, cultures/), else in a new file
 *    of that path with their lines;
 *  - into want's model.tmdl: the model properties and annotations have sets and want does
 *    not (PBIDesktopVersion, discourageImplicitMeasures...), and the `ref` lines of kept
 *    tables, roles, perspectives and cultures;
 *  - have's database compatibilityLevel when it is higher than want's (Power BI raises it and
 *    refuses to lower it);
 *  - have's parts that are not TMDL and that want lacks (diagramLayout.json), but .platform.
 * A model merged with itself comes back byte for byte. Blocking objects (see above): without
 * allow_breaking PB_ECONFLICT naming the first pair ("measure 'Total' of table 'Orders' refers
 * to column 'Orders'[Amount], which the contract removes (and 2 more); ..."); with it, objects
 * "via" relationship, hierarchy_level, sort_by and table_removed are left out and the others
 * kept. A name clash is PB_ECONFLICT either way. model_merge does not refuse breaking changes
 * themselves (summary.breaking): that is the caller's decision.
 * Objects are copied as whole lines at an object boundary of their own depth, so the result
 * reads back with the TMDL reader (the tests read back every result, real Power BI models'
 * too); PB_EINTERNAL if an object's lines are not where the reader put them.
 * *out is new; release with pb_files_release; empty on failure. */
int model_merge(const pb_files *want, const pb_files *have, bool allow_breaking, pb_files *out, char *err);

/* model_diff and model_merge of the same two definitions, reading each once: what an update
 * does (its dry run, its checks, then its upload), in half the time of the two calls.
 * model_plan_new reads both sides (the errors of model_diff); want and have are borrowed until
 * model_plan_free. model_plan_diff gives model_diff's JSON (a new reference each call) and
 * model_plan_merge model_merge's files (new, or PB_ECONFLICT as model_merge), as often as
 * needed. One plan is used by one thread at a time. */
typedef struct model_plan model_plan;
int model_plan_new(const pb_files *want, const pb_files *have, model_plan **out, char *err);
int model_plan_diff(model_plan *p, struct json_t **out, char *err);
int model_plan_merge(model_plan *p, bool allow_breaking, pb_files *out, char *err);
void model_plan_free(model_plan *p);   /* NULL-safe */

#endif

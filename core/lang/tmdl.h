/* TMDL reader: a folder or file of Tabular Model Definition Language into a model.
 *
 * Two layers (see shared/reference/tmdl.md §2, §3, §12):
 *  1. A generic node tree: one node per declaration or property line, with the file and
 *     line it came from. Unknown keywords are kept as ordinary nodes, so newer Power BI
 *     output still parses.
 *  2. A model extracted from the tree once every document is in: tables with columns,
 *     measures and partitions, relationships, shared expressions, model annotations.
 *
 * Syntax decisions:
 *  - Indentation is tabs only. A line whose indentation (before the first token of a
 *    declaration or property) contains a space is an error; spaces after the tabs inside
 *    expression bodies are content. Power BI never writes space indentation.
 *  - A UTF-8 BOM is skipped; CRLF and LF are both accepted. Invalid UTF-8 and NUL bytes
 *    are errors.
 *  - Keywords and enum values are matched case-insensitively (`datatype`, `summarizeBy:
 *    None`); enum values the model knows are returned in Power BI's camelCase.
 *  - Multi-line expressions: after `keyword name =` the body is every following line
 *    indented deeper than the object's property level; after `property =` every line
 *    deeper than the property. The smallest common tab indentation and each line's
 *    trailing whitespace are stripped, trailing blank lines dropped. Fenced bodies
 *    (``` ... ```) are verbatim except for the closing fence's indentation margin.
 *  - Top-level objects of the same type and name (case-insensitive) declared several
 *    times are merged (partial declarations). Setting the same property or declaring the
 *    same named child in two declarations is an error, as is a duplicate named child.
 *  - `ref table X` lines fix table order; unreferenced tables follow in document order,
 *    refs to missing tables are ignored. A `ref` with children is a partial declaration.
 *
 * Errors are one line "FILE:LINE: message" in err (PB_ERR_MAX bytes), rc PB_EINVAL for
 * bad input, PB_ELIMIT for a ceiling (runtime/limits.h), PB_ENOMEM, PB_EIO/PB_ENOTFOUND
 * for files that cannot be read.
 *
 * Ownership: every node, string and array reachable from a tmdl_model belongs to it and
 * is freed by tmdl_model_free(); pointers handed out are borrowed until then. */
#ifndef PBIPORT_TMDL_H
#define PBIPORT_TMDL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- layer 1: generic node tree ---- */

typedef enum tmdl_node_kind {
	TMDL_NODE_ROOT,       /* synthetic parent of all top-level nodes */
	TMDL_NODE_OBJECT,     /* `keyword name` or `keyword name = default` */
	TMDL_NODE_PROPERTY,   /* `key: value` (value trimmed, "..." quotes removed) */
	TMDL_NODE_EXPRESSION, /* `key = expression` (also unnamed objects: changedProperty = X) */
	TMDL_NODE_BARE,       /* `keyword` alone: boolean true, or a struct when it has children */
	TMDL_NODE_REF,        /* `ref type name`; type holds the referenced type */
} tmdl_node_kind;

typedef struct tmdl_node tmdl_node;
struct tmdl_node {
	tmdl_node_kind kind;
	const char *type;        /* keyword as written ("table", "dataType"); "" for the root */
	const char *name;        /* unquoted name; NULL when the line has none */
	const char *value;       /* `:` value, `=` default/expression; NULL when absent */
	const char *description; /* joined `///` lines ("\n" between); NULL when absent */
	bool fenced;             /* value came from a ``` block */
	const char *file;        /* document name given to tmdl_parse_buffer */
	int line;                /* 1-based line of the declaration */
	/* The lines the node takes in its document: first_line is its first `///` line (or
	 * `line`), last_line the last line of its value and of the children declared with it
	 * (blank lines after it excluded). Lines [first_line, last_line] of `file` are the
	 * node's own text, so a writer can copy an object verbatim (core/lang/model_diff.c).
	 * Children a partial declaration in another place adds keep their own spans; the
	 * merged node's span stays that of its first declaration. */
	int first_line, last_line;
	tmdl_node *parent;
	tmdl_node *first_child, *last_child, *next;
};

/* ---- layer 2: the model ---- */

typedef struct tmdl_annotation {
	const char *name;
	const char *value;       /* "" when the annotation has no value */
} tmdl_annotation;

typedef struct tmdl_column {
	const char *name;
	const char *data_type;       /* NULL when absent */
	const char *source_column;
	const char *format_string;
	const char *summarize_by;
	const char *description;
	const char *expression;      /* DAX of a calculated column; NULL for data columns */
	const char *lineage_tag;
	const char *display_folder;
	const char *sort_by_column;  /* unquoted column name */
	bool is_hidden, is_key;
	bool is_nullable;            /* default true */
	tmdl_annotation *annotations;
	size_t n_annotations;
	const tmdl_node *node;
} tmdl_column;

typedef struct tmdl_measure {
	const char *name;
	const char *expression;      /* DAX; "" when empty */
	const char *format_string;
	const char *display_folder;
	const char *description;
	const char *lineage_tag;
	bool is_hidden;
	tmdl_annotation *annotations;
	size_t n_annotations;
	const tmdl_node *node;
} tmdl_measure;

typedef struct tmdl_partition {
	const char *name;
	const char *source_type;     /* default property: m, calculated, entity, query, ... */
	const char *mode;            /* import, directQuery, dual, directLake, ...; NULL if absent */
	const char *source;          /* M/DAX/SQL text; NULL for struct-only sources */
	const char *entity_name;     /* entity partitions (Direct Lake) */
	const char *schema_name;
	const char *expression_source;
	const char *data_source;     /* query partitions */
	const tmdl_node *node;
} tmdl_partition;

typedef struct tmdl_table {
	const char *name;
	const char *description;
	const char *lineage_tag;
	bool is_hidden;
	tmdl_column *columns;
	size_t n_columns;
	tmdl_measure *measures;
	size_t n_measures;
	tmdl_partition *partitions;
	size_t n_partitions;
	size_t n_hierarchies;
	/* named child objects besides columns, measures, partitions, annotations and extended
	 * properties (hierarchies, calendars, ...): 0 spares a walk over the children */
	size_t n_other_members;
	bool is_calculation_group;
	tmdl_annotation *annotations;
	size_t n_annotations;
	const tmdl_node *node;       /* merged declaration, for anything not extracted */
} tmdl_table;

typedef struct tmdl_relationship {
	const char *name;
	const char *from_table, *from_column;   /* many side */
	const char *to_table, *to_column;       /* one side */
	const char *from_cardinality;           /* default "many" */
	const char *to_cardinality;             /* default "one" */
	const char *cross_filtering_behavior;   /* default "oneDirection" */
	bool is_active;                         /* default true */
	const tmdl_node *node;
} tmdl_relationship;

typedef struct tmdl_expression {
	const char *name;
	const char *value;           /* M text, including any `meta [...]` */
	const char *description;
	const char *lineage_tag;
	const char *query_group;     /* unquoted */
	tmdl_annotation *annotations;
	size_t n_annotations;
	const tmdl_node *node;
} tmdl_expression;

typedef struct tmdl_model {
	const char *name;            /* `model Model` name; NULL when no model block was read */
	const char *culture;
	tmdl_table *tables;          /* in `ref table` order, then unreferenced ones */
	size_t n_tables;
	tmdl_relationship *relationships;
	size_t n_relationships;
	tmdl_expression *expressions;
	size_t n_expressions;
	tmdl_annotation *annotations;  /* model annotations (top-level and inside `model`) */
	size_t n_annotations;
	size_t n_documents;
	bool finished;
	struct tmdl_priv *priv;      /* parser state and memory; not for callers */
} tmdl_model;

/* new: caller frees with tmdl_model_free(). NULL on OOM. */
tmdl_model *tmdl_model_new(void);

/* Adds one document (a .tmdl file's bytes) to a model being built. name is used in
 * error messages and node->file (copied). text need not be NUL-terminated. Feed the
 * documents in path order (as tmdl_parse_path does): partial declarations merge at the
 * first one and unreferenced tables keep document order. Only .tmdl parts belong here
 * (not definition.pbism or .platform). After an error the model must only be freed. */
int tmdl_parse_buffer(tmdl_model *m, const char *name, const char *text, size_t len, char *err);

/* Merges partial declarations, checks duplicates, extracts tables/relationships/
 * expressions and applies `ref table` order. Call once, after the last buffer. */
int tmdl_model_finish(tmdl_model *m, char *err);

/* Parses a folder or one file into a finished model.
 * Folder: reads PATH/definition/ when it exists, else PATH, taking every *.tmdl file
 * below it (hidden entries skipped) in sorted path order. *out is new: caller frees
 * with tmdl_model_free(); NULL on error. */
int tmdl_parse_path(const char *path, tmdl_model **out, char *err);

void tmdl_model_free(tmdl_model *m);   /* NULL-safe */

/* new reference (json_decref); NULL on OOM. The whole extracted model. */
json_t *tmdl_model_to_json(const tmdl_model *m);
/* new reference; the generic tree under node (use tmdl_model_root for everything). */
json_t *tmdl_node_to_json(const tmdl_node *node);

/* Lookups: borrowed until tmdl_model_free; NULL when absent. Names compare
 * case-insensitively (ASCII), as Tabular does. */
const tmdl_node *tmdl_model_root(const tmdl_model *m);
const tmdl_table *tmdl_model_find_table(const tmdl_model *m, const char *name);
const tmdl_column *tmdl_table_find_column(const tmdl_table *t, const char *name);
const tmdl_measure *tmdl_table_find_measure(const tmdl_table *t, const char *name);
const tmdl_expression *tmdl_model_find_expression(const tmdl_model *m, const char *name);
/* First child of node with this type (case-insensitive), any kind; NULL when none. */
const tmdl_node *tmdl_node_child(const tmdl_node *node, const char *type);
/* The value of node's `annotation NAME = value` child (name compared case-insensitively):
 * "" for an annotation without value, NULL when node has no such annotation. */
const char *tmdl_node_annotation(const tmdl_node *node, const char *name);

#endif

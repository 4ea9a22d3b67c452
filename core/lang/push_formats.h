/* Push rows as Power BI takes them: the schema of a push dataset's tables (Power BI's
 * types and limits), each value checked and converted to its column's JSON type, and readers
 * that stream a body (JSON array, NDJSON, CSV with a header row) into chunks of converted rows.
 * Pure: no database, no network (core/flow/push.h uses it). */
#ifndef PBIPORT_PUSH_FORMATS_H
#define PBIPORT_PUSH_FORMATS_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/strbuf.h"

struct json_t;

/* ---- schema ---- */

typedef enum push_type {
	PUSH_INT64, PUSH_DOUBLE, PUSH_DECIMAL, PUSH_BOOLEAN, PUSH_DATETIME, PUSH_STRING,
} push_type;

typedef struct push_column {
	char *name;
	push_type type;
} push_column;

typedef struct push_table {
	char *name;
	push_column *cols;
	size_t ncols;
} push_table;

typedef struct push_schema {
	push_table *tables;
	size_t ntables;
} push_schema;

/* Power BI's spelling of t ("Int64", "Double", "Decimal", "Boolean", "Datetime", "String"). */
const char *push_type_name(push_type t);
/* Case-insensitive; "bool" and "DateTime" accepted. PB_EINVAL otherwise. */
int push_type_parse(const char *s, push_type *out, char *err);
/* Checks a "tables" array in Power BI's shape against the limits (tables, columns, name
 * lengths, unique names) and fills *out (release with push_schema_release). */
int push_schema_parse(const struct json_t *tables, push_schema *out, char *err);
void push_schema_release(push_schema *s);
/* [{"name","columns":[{"name","dataType"}]}]; new reference, NULL on OOM. */
struct json_t *push_schema_json(const push_schema *s);
/* Borrowed; NULL when there is no such table (names compare case-insensitively). */
const push_table *push_schema_table(const push_schema *s, const char *name);
/* True when both schemas have the same tables, columns and types (in order). */
bool push_schema_equal(const push_schema *a, const push_schema *b);

/* ---- rows ---- */

typedef enum push_format { PUSH_FMT_JSON, PUSH_FMT_NDJSON, PUSH_FMT_CSV } push_format;

/* application/json → JSON array; application/x-ndjson, application/ndjson,
 * application/jsonl → NDJSON; text/csv → CSV. PB_EINVAL otherwise. */
int push_format_from_media_type(const char *media_type, push_format *out, char *err);

/* Converts one text value to column type t, appending its JSON text to out. quoted: a CSV
 * field written in quotes (an empty quoted field is an empty string, an empty unquoted one
 * is null). PB_EINVAL with a message that does not name the row (the reader adds it). */
int push_convert_text(push_type t, const char *s, size_t len, bool quoted, sbuf *out, char *err);

/* A chunk of converted rows: rows_json is a JSON array text (borrowed for the call). */
typedef int (*push_chunk_fn)(void *ctx, const char *rows_json, size_t len, size_t nrows, char *err);

typedef struct push_reader push_reader;

/* chunk_rows: rows per chunk (1..POWERBI_PUSH_ROWS_MAX). t is borrowed for the reader's
 * life. *out new: free with push_reader_free. */
int push_reader_new(const push_table *t, push_format f, size_t chunk_rows, push_chunk_fn fn, void *ctx,
		    push_reader **out, char *err);
/* Feeds the next bytes of the body. The first bad row ends the reading with PB_EINVAL. */
int push_reader_feed(push_reader *rd, const char *data, size_t len, char *err);
/* End of body: checks the format is complete and hands over the last chunk. */
int push_reader_finish(push_reader *rd, char *err);
size_t push_reader_rows(const push_reader *rd);   /* data rows read so far */
void push_reader_free(push_reader *rd);

/* Puts prefix before the message already in err (err cannot be both source and target). */
int push_wrap_err(char *err, int rc, const char *prefix);
/* A dataset, table or column name as Power BI takes it: 1..100 characters, what names it. */
int push_check_name(const char *what, const char *name, char *err);

#endif

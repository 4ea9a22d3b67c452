/* Lineage from Power Query M: which source tables an M expression reads.
 *
 * A real M reader, not a regular expression: a tokenizer (strings with "" and #(...)
 * escapes, #"quoted identifiers", // and block comments, numbers, operators), a parser
 * for the whole expression language (let/in, records, lists, calls, item and field
 * access, each, functions, if, try, meta, type expressions), and a symbolic evaluator
 * that follows step names through the let (in any order) and into the model's shared
 * expressions (parameters and other queries), passed by the caller.
 *
 * Recognised sources (the navigation Power BI Desktop writes for each is listed, with where
 * Microsoft describes it, above the connector table in mlineage.c; docs/import.md has the
 * user's table):
 *  - Snowflake.Databases(host, warehouse[, options]) and Databricks.Catalogs /
 *    DatabricksMultiCloud.Catalogs(host, httpPath[, options]) with navigation
 *    X{[Name=..,Kind="Database"|"Schema"|"Table"|"View"]}[Data] (Kind may be left out:
 *    the level decides) and X{[Item=..,Schema=..,Catalog=..]}[Data]; Databricks.Query(host,
 *    httpPath[, options]), a function called on a SQL text;
 *  - Sql.Database(server, db[, [Query=".."]]) and Sql.Databases(server) (SQL Server, Azure SQL,
 *    Azure Synapse, the Fabric Warehouse / Lakehouse SQL endpoint: type "sql"),
 *    PostgreSQL.Database ("postgresql") and AmazonRedshift.Database ("redshift") with
 *    X{[Schema=..,Item=..]}[Data] or Name navigation; MySQL.Database ("mysql": database and
 *    table, no schema); Oracle.Database(server[, options]) ("oracle": the server, a TNS name or
 *    host[:port]/service, names the database: the service, when written, is `database`);
 *  - GoogleBigQuery.Database([BillingProject=..]) ("bigquery": no host; database = project,
 *    schema = dataset; the billing project is kept in `warehouse`), AmazonAthena.Databases(dsn)
 *    ("athena": host = the DSN; database = data catalog, schema = Athena database);
 *  - Odbc.DataSource(connection[, [HierarchicalNavigation=true]]) and Odbc.Query(connection,
 *    "SQL") ("odbc"): host = the connection text without pwd/password; the levels the driver
 *    has, by their Kind; a MySQL or MariaDB driver reads names as database.table; notes of a
 *    partial ODBC source start with its driver or DSN;
 *  - Value.NativeQuery(<navigation or connector>, "SQL", ...): tables after FROM/JOIN
 *    (1-3 part names, quoted identifiers, BigQuery's `project.dataset.table`, CTE names and
 *    subqueries excluded), the missing parts taken from the navigation and Databricks'
 *    Catalog/Database options.
 * A value chosen by a condition that is not known (if, try ... otherwise) is each of its
 * branches: navigation and native queries applied to it apply to each, so
 * `if c then Sql.Database(a, "p") else Sql.Database(b, "d")` followed by
 * {[Schema="dbo",Item="t"]} gives p.dbo.t and d.dbo.t (at most PB_MLINEAGE_MAX_ALTS).
 * A condition that is known (a parameter's value, true, false) picks its branch.
 * Anything else that reaches the result through a table function (Table.SelectRows,
 * Table.NestedJoin, Table.Combine, lambdas, if/else...) carries its sources along.
 * Names that cannot be known (a parameter that is missing, a computed name) give a
 * source with confidence "partial" and a note saying what is unknown; the parser never
 * guesses a table.
 *
 * Limits (runtime/limits.h): PB_MLINEAGE_MAX_BYTES of M per expression, nesting
 * PB_MLINEAGE_MAX_DEPTH, PB_MLINEAGE_MAX_SOURCES results, PB_MLINEAGE_MAX_MEMORY of
 * working memory, PB_MLINEAGE_MAX_PARAM_DEPTH shared expressions followed in a chain.
 *
 * Errors: PB_EINVAL with "LINE:COL: message" for M that does not parse, PB_ELIMIT for
 * a ceiling, PB_ENOMEM. An expression that parses never fails for being unresolvable:
 * that is what the notes are for. */
#ifndef PBIPORT_MLINEAGE_H
#define PBIPORT_MLINEAGE_H

#include <stdbool.h>
#include <stddef.h>

struct json_t;
struct tmdl_model;

/* One shared expression of the model: name as declared (unquoted), value its M text,
 * e.g. `"acme.snowflakecomputing.com" meta [IsParameterQuery=true, Type="Text"]` or
 * a whole let ... in query. A caller may also pass the other tables of the model (name =
 * table name, value = its M partition source): a table defined as `let Source = DimDate
 * in Source` then carries DimDate's sources. Both borrowed for the duration of
 * mlineage_parse(). */
typedef struct mlineage_param {
	const char *name;
	const char *value;
} mlineage_param;

typedef struct mlineage_source {
	char *type;        /* "snowflake", "databricks", "sql", "postgresql", "redshift", "mysql",
			    * "oracle", "bigquery", "athena", "odbc" */
	char *host;        /* server host as written (Athena: the DSN; ODBC: the connection text
			    * without secrets); NULL when dynamic, and for BigQuery */
	char *warehouse;   /* Snowflake warehouse, BigQuery billing project; NULL otherwise or
			    * when unknown */
	char *http_path;   /* Databricks HTTP path; NULL otherwise or when unknown */
	char *database;    /* database; the Unity catalog for Databricks; NULL when unknown */
	char *schema;      /* NULL when unknown */
	char *table;       /* table or view name; NULL when unknown */
	const char *kind;  /* static: "table", "view" or "query" (read by native SQL) */
	bool exact;        /* host, database, schema and table all known (but for the levels the
			    * source has not got: MySQL's schema, Oracle's database, BigQuery's
			    * host): confidence "exact" */
	char *note;        /* why it is partial (or a remark); NULL when nothing to say */
} mlineage_source;

typedef struct mlineage_sources {
	mlineage_source *v;   /* distinct sources, in the order the expression reaches them */
	size_t n;
	char *note;           /* about the whole expression (other source functions not
			       * traced, results cut at the limit); NULL when none */
} mlineage_sources;

/* Parses m and fills *out (which must be zeroed or released before). params may be
 * NULL when nparams is 0. Names compare as M does (case-sensitive); a parameter is
 * used only when no step of the expression has that name. On failure *out is empty.
 * Ownership: everything in *out is new; free with mlineage_sources_release(). */
int mlineage_parse(const char *m, const mlineage_param *params, size_t nparams, mlineage_sources *out,
		   char *err);
void mlineage_sources_release(mlineage_sources *s);   /* NULL-safe; leaves *s empty */

/* The shared expressions of a parsed model as parameters: *out is new (caller frees
 * the array with free()); the strings are borrowed from model until tmdl_model_free. */
int mlineage_params_from_model(const struct tmdl_model *model, mlineage_param **out, size_t *n,
			       char *err);

/* {"sources":[{"type","host","warehouse"|"http_path"|"billing_project","database"|"catalog",
 * "schema","table","kind","confidence":"exact"|"partial","note"}],"note":...}: unknown values
 * are null; Databricks names its database "catalog". New reference; NULL on OOM. */
struct json_t *mlineage_sources_json(const mlineage_sources *s);
struct json_t *mlineage_source_json(const mlineage_source *s);

/* True when two server names denote the same server for a source of this type:
 * ASCII case-insensitive; a scheme (https://), a path, a port and trailing dots are
 * ignored. For "snowflake" an account identifier equals its host
 * (`xy12345.eu-west-1` = `XY12345.eu-west-1.snowflakecomputing.com`; also the
 * .privatelink form), and `_` equals `-` in the account part. NULL or empty never
 * matches. */
bool mlineage_same_server(const char *type, const char *a, const char *b);

/* True when a source of source_type can be a server of server_type: M source types
 * ("sql", "postgresql", ...), ODCS server types ("sqlserver", "synapse", "postgres",
 * "bigquery", ...) and Power BI data source types ("Sql", "PostgreSql", "GoogleBigQuery",
 * ...) compare by family, ASCII case-insensitive; a name no family knows matches a server
 * type it contains ("AzureDatabricks" and "databricks"). NULL or empty never matches. */
bool mlineage_same_type(const char *source_type, const char *server_type);

#endif

/* Sources as template files (core/lang/sources.h, templates/tmdl/sources/): every built-in
 * source renders its contract (tests/fixtures/sources/), the model parses back and reads the
 * source its description says, with the values its Fabric connection is made of; each source's
 * type mapping; storage modes; a description's mistakes are named with the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/unit/testutil.h"

#include "core/flow/publish.h"
#include "core/lang/contract.h"
#include "core/lang/render.h"
#include "core/lang/sources.h"
#include "core/lang/tmdl.h"
#include "runtime/util.h"

static pb_config cfg;

static int setup(void **state)
{
	(void)state;
	config_defaults(&cfg);
	return 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return xstrdup(buf);
}

/* A port as the catalog keeps one: the contract's server `server` of type `type`. */
static cat_port *fixture_port(const char *source, const char *server)
{
	char path[512];
	cat_port *p = calloc(1, sizeof *p);
	(void)xsnprintf(path, sizeof path, "%s/tests/fixtures/sources/%s.odcs.yaml", tu_src_dir(), source);
	p->contract_text = slurp(path);
	p->name = xstrdup(server);
	p->type = xstrdup(source);
	p->server_json = xstrdup("{}");
	xsnprintf(p->id, sizeof p->id, "port-%s", source);
	return p;
}

static const struct fixture {
	const char *type, *server;
	const char *conn_type, *creation_method;
	const char *path;          /* the connection's path: the values the model reads */
	bool gateway_only;
} FIXTURES[] = {
	{ "postgres", "pg", "PostgreSQL", "PostgreSQL.Database", "pg.example.com;sales", false },
	{ "sqlserver", "azuresql", "SQL", "SQL", "contoso.database.windows.net;sales", false },
	{ "synapse", "warehouse", "SQL", "SQL",
	  "x6eps4xrq2xudenlfv6naeo3i4-abcd.datawarehouse.fabric.microsoft.com;SalesWarehouse", false },
	{ "bigquery", "bq", "GoogleBigQuery", "GoogleBigQuery.Database", "", false },
	{ "redshift", "rs", "AmazonRedshift", "AmazonRedshift.Database",
	  "examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com;dev", false },
	{ "mysql", "shop", "MySql", "MySQL.Database", "mysql.example.com;shop", true },
	{ "oracle", "hr", "Oracle", "Oracle.Database", "db.example.com/ORCLPDB1", true },
};

/* Each source renders its contract; the model parses back and binds to one source of the kind
 * the description reads (publish_port_source), whose connection path is what Fabric shows. */
static void every_source_renders_and_reads_back(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof FIXTURES / sizeof FIXTURES[0]; i++) {
		const struct fixture *fx = &FIXTURES[i];
		cat_port *p = fixture_port(fx->type, fx->server);
		publish_source s;
		pb_files files = { 0 };
		pb_failure f;
		if (publish_port_source(&cfg, p, NULL, RENDER_PARAMS_BODY, &s, &files, &f))
			fail_msg("%s: %s", fx->type, f.message);
		assert_string_equal(s.type, fx->conn_type);
		assert_string_equal(s.desc->creation_method, fx->creation_method);
		if (strcmp(s.path, fx->path))
			fail_msg("%s: path %s, want %s", fx->type, s.path, fx->path);
		assert_int_equal(s.desc->gateway_only, fx->gateway_only);
		/* an existing connection of that path matches; another server does not */
		msapi_item c = { .type = (char *)fx->conn_type, .path = (char *)(*fx->path ? fx->path : fx->conn_type) };
		assert_true(publish_connection_matches(&s, &c));
		if (s.desc->nparams) {
			c.path = "elsewhere.example.com;other";
			assert_false(publish_connection_matches(&s, &c));
		}
		c.type = "Snowflake";
		assert_false(publish_connection_matches(&s, &c));
		/* the publish form's view of the description */
		json_t *j = source_desc_json(s.desc);
		assert_non_null(j);
		assert_true(json_array_size(json_object_get(j, "credentials")) >= 1);
		json_decref(j);
		publish_source_release(&s);
		pb_files_release(&files);
		catalog_port_free(p);
	}
}

/* Renders a one-table contract of source `type` whose columns are `props` (YAML flow list
 * entries) and parses it back. *m new; rc and err as tmdl_render's. */
static int render_columns(const char *type, const char *server_fields, const char *props, tmdl_model **m,
			  char *err)
{
	char text[16384];
	pb_contract *c = NULL;
	pb_files files = { 0 };
	*m = NULL;
	(void)xsnprintf(text, sizeof text, "apiVersion: v3.1.0\nkind: DataContract\nid: t\nname: t\nversion: 1.0.0\n"
			"status: active\nservers:\n  - server: s\n    type: %s\n%s\nschema:\n  - name: t\n"
			"    properties:\n%s", type, server_fields, props);
	int rc = contract_parse(text, strlen(text), "test", &c, err);
	if (!rc)
		rc = tmdl_render(c, NULL, &files, err);
	if (!rc) {
		*m = tmdl_model_new();
		for (size_t i = 0; !rc && i < files.n; i++)
			if (strstr(files.v[i].path, ".tmdl"))
				rc = tmdl_parse_buffer(*m, files.v[i].path, files.v[i].content, files.v[i].len, err);
		if (!rc)
			rc = tmdl_model_finish(*m, err);
	}
	pb_files_release(&files);
	contract_free(c);
	return rc;
}

typedef struct type_case {
	const char *physical, *logical;
	const char *data_type;       /* NULL: the render fails naming the column */
	const char *format_string;   /* NULL: none */
} type_case;

static void check_types(const char *type, const char *server_fields, const type_case *cases, size_t n)
{
	char err[PB_ERR_MAX];
	for (size_t i = 0; i < n; i++) {
		char props[512];
		tmdl_model *m = NULL;
		(void)xsnprintf(props, sizeof props, "      - {name: c%zu, logicalType: %s, physicalType: \"%s\"}\n", i,
				cases[i].logical, cases[i].physical);
		int rc = render_columns(type, server_fields, props, &m, err);
		if (!cases[i].data_type) {
			char col[32];
			(void)xsnprintf(col, sizeof col, "column 'c%zu'", i);
			if (rc != PB_EINVAL || !strstr(err, col) || !strstr(err, cases[i].physical) ||
			    !strstr(err, "cannot be represented"))
				fail_msg("%s %s: rc %d, %s (wanted a refusal naming the column)", type, cases[i].physical, rc,
					 err);
			tmdl_model_free(m);
			continue;
		}
		if (rc)
			fail_msg("%s %s: %s", type, cases[i].physical, err);
		const tmdl_column *col = &m->tables[0].columns[0];
		if (strcmp(col->data_type, cases[i].data_type))
			fail_msg("%s %s (%s): dataType %s, want %s", type, cases[i].physical, cases[i].logical, col->data_type,
				 cases[i].data_type);
		const char *fs = col->format_string;
		if ((fs == NULL) != (cases[i].format_string == NULL) || (fs && strcmp(fs, cases[i].format_string)))
			fail_msg("%s %s: formatString %s, want %s", type, cases[i].physical, fs ? fs : "(none)",
				 cases[i].format_string ? cases[i].format_string : "(none)");
		tmdl_model_free(m);
	}
}

#define CURRENCY "\\$#,0.00;(\\$#,0.00);\\$#,0.00"

/* Every ODCS logical type, with the physical types each source's contracts commonly name. */
static void postgres_types(void **state)
{
	(void)state;
	static const type_case cases[] = {
		{ "int4", "integer", "int64", "0" },
		{ "int8", "integer", "int64", "0" },
		{ "numeric(12,2)", "number", "decimal", "#,0.00" },
		{ "numeric(10,0)", "number", "int64", "0" },
		{ "numeric", "number", "double", NULL },
		{ "money", "number", "decimal", CURRENCY },
		{ "float8", "number", "double", NULL },
		{ "double precision", "number", "double", NULL },
		{ "boolean", "boolean", "boolean", NULL },
		{ "date", "date", "dateTime", "Long Date" },
		{ "timestamp", "timestamp", "dateTime", "General Date" },
		{ "timestamptz", "timestamp", "dateTime", "General Date" },
		{ "time", "time", "dateTime", "Long Time" },
		{ "interval", "number", "double", NULL },
		{ "uuid", "string", "string", NULL },
		{ "jsonb", "object", "string", NULL },
		{ "text", "string", "string", NULL },
		{ "varchar[50]", "string", "string", NULL },   /* a length in brackets, not an array */
		{ "bytea", "string", "binary", NULL },
		{ "int4[]", "array", NULL, NULL },
		{ "_text", "array", NULL, NULL },
		{ "tstzrange", "string", NULL, NULL },
	};
	check_types("postgres", "    host: h\n    database: d", cases, sizeof cases / sizeof cases[0]);
}

static void sqlserver_types(void **state)
{
	(void)state;
	static const type_case cases[] = {
		{ "int", "integer", "int64", "0" },
		{ "bigint", "integer", "int64", "0" },
		{ "decimal(18,2)", "number", "decimal", "#,0.00" },
		{ "money", "number", "decimal", CURRENCY },
		{ "smallmoney", "number", "decimal", CURRENCY },
		{ "float", "number", "double", NULL },
		{ "bit", "boolean", "boolean", NULL },
		{ "date", "date", "dateTime", "Long Date" },
		{ "datetime2", "timestamp", "dateTime", "General Date" },
		{ "datetimeoffset", "timestamp", "dateTime", "General Date" },
		{ "time", "time", "dateTime", "Long Time" },
		{ "uniqueidentifier", "string", "string", NULL },
		{ "nvarchar(max)", "string", "string", NULL },
		{ "xml", "string", "string", NULL },
		{ "varbinary(max)", "string", "binary", NULL },
		{ "geography", "string", NULL, NULL },
		{ "hierarchyid", "string", NULL, NULL },
	};
	check_types("sqlserver", "    host: h\n    database: d", cases, sizeof cases / sizeof cases[0]);
	check_types("synapse", "    host: h\n    database: d", cases, 4);
}

static void bigquery_types(void **state)
{
	(void)state;
	static const type_case cases[] = {
		{ "INT64", "integer", "int64", "0" },
		{ "NUMERIC", "number", "double", NULL },
		{ "NUMERIC(10,2)", "number", "decimal", "#,0.00" },
		{ "BIGNUMERIC", "number", "double", NULL },
		{ "FLOAT64", "number", "double", NULL },
		{ "BOOL", "boolean", "boolean", NULL },
		{ "DATE", "date", "dateTime", "Long Date" },
		{ "DATETIME", "timestamp", "dateTime", "General Date" },
		{ "TIMESTAMP", "timestamp", "dateTime", "General Date" },
		{ "TIME", "time", "dateTime", "Long Time" },
		{ "STRING", "string", "string", NULL },
		{ "BYTES", "string", "binary", NULL },
		{ "STRUCT<a INT64>", "object", "string", NULL },
		{ "ARRAY<STRING>", "array", "string", NULL },
		{ "JSON", "object", "string", NULL },
		{ "GEOGRAPHY", "string", "string", NULL },
		{ "INTERVAL", "string", NULL, NULL },
	};
	check_types("bigquery", "    project: p\n    dataset: d", cases, sizeof cases / sizeof cases[0]);
}

static void redshift_mysql_oracle_types(void **state)
{
	(void)state;
	static const type_case redshift[] = {
		{ "bigint", "integer", "int64", "0" },
		{ "decimal(12,2)", "number", "decimal", "#,0.00" },
		{ "double precision", "number", "double", NULL },
		{ "timestamptz", "timestamp", "dateTime", "General Date" },
		{ "super", "object", "string", NULL },
		{ "varbyte", "string", "binary", NULL },
		{ "geometry", "string", NULL, NULL },
	};
	check_types("redshift", "    host: h\n    database: d", redshift, sizeof redshift / sizeof redshift[0]);
	static const type_case mysql[] = {
		{ "int", "integer", "int64", "0" },
		{ "decimal(10,2)", "number", "decimal", "#,0.00" },
		{ "datetime", "timestamp", "dateTime", "General Date" },
		{ "json", "object", "string", NULL },
		{ "longblob", "string", "binary", NULL },
		{ "point", "string", NULL, NULL },
	};
	check_types("mysql", "    host: h\n    database: d", mysql, sizeof mysql / sizeof mysql[0]);
	static const type_case oracle[] = {
		{ "NUMBER(6,0)", "integer", "int64", "0" },
		{ "NUMBER(8,2)", "number", "decimal", "#,0.00" },
		{ "BINARY_DOUBLE", "number", "double", NULL },
		{ "DATE", "date", "dateTime", "General Date" },   /* an Oracle DATE has a time of day */
		{ "TIMESTAMP(6) WITH TIME ZONE", "timestamp", "dateTime", "General Date" },
		{ "VARCHAR2(100)", "string", "string", NULL },
		{ "CLOB", "string", "string", NULL },
		{ "BLOB", "string", "binary", NULL },
		{ "SDO_GEOMETRY", "string", NULL, NULL },
	};
	check_types("oracle", "    host: h\n    serviceName: S\n    customProperties: [{property: schema, value: HR}]",
		    oracle, sizeof oracle / sizeof oracle[0]);
}

/* powerbi.storageMode on the schema object or the server, else --mode, else the source's
 * default; refused, naming it, where Power BI does not allow it. */
static void storage_modes(void **state)
{
	(void)state;
	char text[2048], err[PB_ERR_MAX];
	static const char contract[] =
		"apiVersion: v3.1.0\nkind: DataContract\nid: t\nname: t\nversion: 1.0.0\nstatus: active\nservers:\n"
		"  - server: s\n    type: %s\n    host: h\n    database: d\n%s\nschema:\n"
		"  - name: a\n    customProperties: [{property: powerbi.storageMode, value: %s}]\n"
		"    properties: [{name: x, logicalType: string}]\n"
		"  - name: b\n    properties: [{name: y, logicalType: string}]\n";
	pb_contract *c = NULL;
	pb_files files = { 0 };

	/* table a DUAL (any case), table b the server's directQuery */
	(void)xsnprintf(text, sizeof text, contract, "postgres",
			"    customProperties: [{property: powerbi.storageMode, value: directquery}]", "DUAL");
	assert_int_equal(contract_parse(text, strlen(text), "t", &c, err), PB_OK);
	assert_int_equal(tmdl_render(c, NULL, &files, err), PB_OK);
	for (size_t i = 0; i < files.n; i++) {
		if (!strcmp(files.v[i].path, "definition/tables/a.tmdl"))
			assert_non_null(strstr(files.v[i].content, "\t\tmode: dual\n"));
		if (!strcmp(files.v[i].path, "definition/tables/b.tmdl"))
			assert_non_null(strstr(files.v[i].content, "\t\tmode: directQuery\n"));
	}
	pb_files_release(&files);
	contract_free(c);

	/* --mode applies where the contract says nothing; the contract wins */
	(void)xsnprintf(text, sizeof text, contract, "postgres", "", "import");
	assert_int_equal(contract_parse(text, strlen(text), "t", &c, err), PB_OK);
	render_opts dq = { .mode = "DirectQuery" };
	assert_int_equal(tmdl_render(c, &dq, &files, err), PB_OK);
	for (size_t i = 0; i < files.n; i++) {
		if (!strcmp(files.v[i].path, "definition/tables/a.tmdl"))
			assert_non_null(strstr(files.v[i].content, "\t\tmode: import\n"));
		if (!strcmp(files.v[i].path, "definition/tables/b.tmdl"))
			assert_non_null(strstr(files.v[i].content, "\t\tmode: directQuery\n"));
	}
	pb_files_release(&files);
	contract_free(c);

	/* MySQL imports only: a DirectQuery table is refused, naming it and what Power BI allows */
	(void)xsnprintf(text, sizeof text, contract, "mysql", "", "directQuery");
	assert_int_equal(contract_parse(text, strlen(text), "t", &c, err), PB_OK);
	render_fault fault = RENDER_FAULT_NONE;
	render_opts o = { .fault = &fault };
	assert_int_equal(tmdl_render(c, &o, &files, err), PB_EINVAL);
	assert_string_equal(err, "table \"a\": storage mode directQuery is not allowed for mysql sources in Power BI "
				 "(import)");
	assert_int_equal(fault, RENDER_FAULT_INPUT);
	render_opts cli = { .mode = "dual", .params = RENDER_PARAMS_CLI };
	contract_free(c);
	(void)xsnprintf(text, sizeof text, contract, "mysql", "", "import");
	assert_int_equal(contract_parse(text, strlen(text), "t", &c, err), PB_OK);
	assert_int_equal(tmdl_render(c, &cli, &files, err), PB_EINVAL);
	assert_string_equal(err, "--mode: storage mode dual is not allowed for mysql sources in Power BI (import)");
	contract_free(c);

	/* a value that is no mode is refused when the contract is read */
	(void)xsnprintf(text, sizeof text, contract, "postgres", "", "twin");
	assert_int_equal(contract_parse(text, strlen(text), "t", &c, err), PB_EINVAL);
	assert_non_null(strstr(err, "schema[0].customProperties: powerbi.storageMode \"twin\": use import, directQuery or "
				    "dual"));
	(void)xsnprintf(text, sizeof text, contract, "postgres",
			"    customProperties: [{property: powerbi.storageMode, value: live}]", "import");
	assert_int_equal(contract_parse(text, strlen(text), "t", &c, err), PB_EINVAL);
	assert_non_null(strstr(err, "servers[0].customProperties: powerbi.storageMode \"live\""));
}

/* A description's mistakes are the server's templates' fault and name the file and the place. */
static void broken_descriptions_are_named(void **state)
{
	(void)state;
	char tmp[64], dir[600], err[PB_ERR_MAX];
	assert_int_equal(tu_mkdtemp(tmp, sizeof tmp, "sources"), 0);
	(void)xsnprintf(dir, sizeof dir, "%s/sources", tmp);
	assert_int_equal(mkdir(dir, 0700), 0);
	static const struct {
		const char *body, *want;
	} cases[] = {
		{ "return 42", "must return a table (the source description), not a number" },
		{ "return { label = 'X' }", "template sources/broken.lua: reads: required" },
		{ "return { label = 'X', reads = 'sql', fields = { { name = 'host' } }, connection = { type = 'T', "
		  "creation_method = 'M', parameters = { { name = 'server', from = 'port' } } } }",
		  "connection.parameters[1]: from \"port\": host, warehouse, http_path or database" },
		{ "return { label = 'X', reads = 'sql', fields = { { name = 'host' } }, connection = { type = 'T', "
		  "creation_method = 'M' }, credentials = { { kind = 'k', fabric = 'Basic', label = 'L', fields = { "
		  "{ name = 'u', label = 'U' } } } }, storage_modes = { 'import' } }",
		  "credentials[1]: fields: Basic takes 2 values" },
		{ "return { label = 'X', reads = 'sql', fields = { { name = 'host' } }, connection = { type = 'T', "
		  "creation_method = 'M' }, credentials = { { kind = 'k', fabric = 'OAuth2', label = 'L', fields = {} } }, "
		  "storage_modes = { 'import' } }",
		  "fabric \"OAuth2\": Basic, Key or ServicePrincipal" },
		{ "return { label = 'X', reads = 'sql', fields = { { name = 'host' } }, connection = { type = 'T', "
		  "creation_method = 'M' }, credentials = { { kind = 'k', fabric = 'Key', label = 'L', fields = { { name = "
		  "'key', label = 'K' } } } }, storage_modes = { 'live' } }",
		  "storage_modes: \"live\": import, directQuery or dual" },
		{ "return { label = 'X', reads = 'sql', fields = { 1, 2 } }", "fields[1]: expected a table" },
		{ "return { label = 'X', [3] = 'y' }", "a key of type number" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		source_desc *d = NULL;
		tu_put(dir, "broken.lua", cases[i].body);
		int rc = source_describe(&cfg, tmp, "broken", &d, err);
		if (rc == PB_OK || !strstr(err, cases[i].want))
			fail_msg("case %zu: rc %d: %s (wanted %s)", i, rc, err, cases[i].want);
		assert_null(d);
	}
	/* a type without a description; a name no file can have */
	source_desc *d = NULL;
	assert_int_equal(source_describe(&cfg, tmp, "kafka", &d, err), PB_ENOTFOUND);
	assert_non_null(strstr(err, "no source description for type kafka (there are: bigquery, broken, databricks"));
	assert_int_equal(source_describe(&cfg, tmp, "../x", &d, err), PB_ENOTFOUND);
	assert_false(source_supported(&cfg, "Snowflake"));
	assert_true(source_supported(&cfg, "snowflake"));
	tu_put(dir, "broken.lua", "return require 'sources.postgres'");   /* an alias, as postgresql.lua is */
	assert_int_equal(source_describe(&cfg, tmp, "broken", &d, err), PB_OK);
	assert_string_equal(d->conn_type, "PostgreSQL");
	assert_string_equal(d->type, "broken");
	source_desc_free(d);
	assert_int_equal(tu_rmtree(tmp), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_source_renders_and_reads_back),
		cmocka_unit_test(postgres_types),
		cmocka_unit_test(sqlserver_types),
		cmocka_unit_test(bigquery_types),
		cmocka_unit_test(redshift_mysql_oracle_types),
		cmocka_unit_test(storage_modes),
		cmocka_unit_test(broken_descriptions_are_named),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}

/* Unit tests for core/lang/contract (the ODCS reader) and core/lang/yamltree.
 * Fixtures: tests/fixtures/contracts/ and examples/contracts/ (paths from $PBIPORT_SRC,
 * default the current folder). The corpus test reads $PBIPORT_CORPUS/odcs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/lang/contract.h"
#include "core/lang/yamltree.h"
#include "runtime/strbuf.h"
#include "runtime/util.h"
#include "tests/unit/testutil.h"

#define V3_HEAD "apiVersion: v3.1.0\nkind: DataContract\nid: t\nversion: 1.0.0\nstatus: draft\n"

static void src_path(char *dst, size_t n, const char *rel)
{
	const char *src = getenv("PBIPORT_SRC");
	assert_int_equal(xsnprintf(dst, n, "%s/%s", src && *src ? src : ".", rel), 0);
}

static pb_contract *load_ok(const char *rel)
{
	char path[4096], err[PB_ERR_MAX];
	pb_contract *c = NULL;
	src_path(path, sizeof path, rel);
	int rc = contract_load(path, &c, err);
	if (rc)
		fail_msg("%s: %s", rel, err);
	return c;
}

static pb_contract *parse_ok(const char *text)
{
	char err[PB_ERR_MAX];
	pb_contract *c = NULL;
	int rc = contract_parse(text, strlen(text), "t.yaml", &c, err);
	if (rc)
		fail_msg("parse failed: %s", err);
	return c;
}

/* Parses text expecting failure rc; the message must equal `exact`, or contain it
 * when exact starts with '~'. */
static void expect_err(const char *text, size_t len, int rc_want, const char *exact)
{
	char err[PB_ERR_MAX];
	pb_contract *c = (pb_contract *)1;
	int rc = contract_parse(text, len, "t.yaml", &c, err);
	if (rc != rc_want) {
		contract_free(c);
		fail_msg("rc %d (want %d): %s", rc, rc_want, rc ? err : "(parsed)");
	}
	assert_null(c);
	assert_null(strchr(err, '\n'));
	if (exact[0] == '~') {
		if (!strstr(err, exact + 1))
			fail_msg("error \"%s\" lacks \"%s\"", err, exact + 1);
	} else {
		assert_string_equal(err, exact);
	}
}

static void expect_error(const char *text, const char *exact)
{
	expect_err(text, strlen(text), PB_EINVAL, exact);
}

static bool has_warning(const pb_contract *c, const char *needle)
{
	for (size_t i = 0; i < c->nwarnings; i++)
		if (strstr(c->warnings[i], needle))
			return true;
	return false;
}

static const pb_table *table(const pb_contract *c, const char *name)
{
	for (size_t i = 0; i < c->ntables; i++)
		if (!strcmp(c->tables[i].name, name))
			return &c->tables[i];
	fail_msg("no table %s", name);
	return NULL;
}

static const pb_column *column(const pb_table *t, const char *name)
{
	for (size_t i = 0; i < t->ncolumns; i++)
		if (!strcmp(t->columns[i].name, name))
			return &t->columns[i];
	fail_msg("no column %s.%s", t->name, name);
	return NULL;
}

static const pb_relationship *relationship(const pb_contract *c, const char *from_table, const char *from_col)
{
	for (size_t i = 0; i < c->nrelationships; i++)
		if (!strcmp(c->relationships[i].from_table, from_table) &&
		    !strcmp(c->relationships[i].from_column, from_col))
			return &c->relationships[i];
	fail_msg("no relationship from %s.%s", from_table, from_col);
	return NULL;
}

/* ---- good documents -------------------------------------------------------------- */

static void v3_yaml_example(void **state)
{
	(void)state;
	pb_contract *c = load_ok("examples/contracts/orders.odcs.yaml");
	assert_int_equal(c->odcs_major, 3);
	assert_string_equal(c->id, "urn:datacontract:sales:orders");
	assert_string_equal(c->name, "Orders");
	assert_string_equal(c->version, "1.2.0");
	assert_string_equal(c->api_version, "v3.1.0");
	assert_string_equal(c->status, "active");
	assert_string_equal(c->domain, "sales");
	assert_non_null(strstr(c->description, "\nRefreshed every night from the \"shop\" database."));
	assert_int_equal(c->description[strlen(c->description) - 1], '.'); /* block newline trimmed */
	assert_int_equal(c->ntables, 3);

	const pb_table *cust = table(c, "customers");
	assert_string_equal(cust->physical_name, "CUSTOMERS");
	assert_string_equal(cust->physical_type, "table");
	assert_string_equal(cust->business_name, "Customers");
	assert_string_equal(cust->id, "customers_tbl");
	assert_string_equal(cust->description, "One row per customer.\nCustomers who asked to be forgotten are removed.");
	const pb_column *id = column(cust, "customer_id");
	assert_string_equal(id->logical_type, "integer");
	assert_string_equal(id->physical_type, "NUMBER(38,0)");
	assert_true(id->required && id->unique && id->primary_key);
	assert_int_equal(id->primary_key_position, 1);
	assert_int_equal(id->precision, 38);
	assert_int_equal(id->scale, 0);
	const pb_column *nm = column(cust, "Customer Name");
	assert_string_equal(nm->physical_name, "CUSTOMER_NAME");
	assert_string_equal(nm->classification, "restricted");
	assert_string_equal(nm->description, "Full name as the customer typed it, e.g. \"Ada Lovelace\".");
	assert_false(nm->primary_key);
	assert_int_equal(nm->precision, -1);
	assert_null(column(cust, "country_code")->business_name);

	const pb_table *lines = table(c, "order_lines");
	assert_string_equal(lines->physical_type, "view");
	assert_int_equal(column(lines, "line_number")->primary_key_position, 2);
	const pb_column *total = column(table(c, "orders"), "order_total");
	assert_string_equal(total->logical_type, "number");
	assert_int_equal(total->precision, 12);
	assert_int_equal(total->scale, 2);

	/* servers: every connection field, in document order; warehouse included */
	assert_int_equal(c->nservers, 2);
	const pb_server *s = contract_server(c, NULL);
	assert_string_equal(s->name, "production");
	assert_string_equal(s->type, "snowflake");
	assert_string_equal(s->fields[0].key, "environment");
	assert_string_equal(s->fields[1].key, "account");
	assert_string_equal(server_field(s, "warehouse"), "REPORTING_WH");
	assert_string_equal(server_field(s, "port"), "443");
	assert_string_equal(server_field(s, "database"), "SALES");
	assert_null(server_field(s, "httpPath"));
	assert_string_equal(server_field(contract_server(c, "development"), "warehouse"), "DEV_WH");
	assert_null(contract_server(c, "nope"));

	/* property-level shorthand and object-level fully qualified */
	assert_int_equal(c->nrelationships, 2);
	const pb_relationship *r1 = relationship(c, "orders", "customer_id");
	assert_string_equal(r1->to_table, "customers");
	assert_string_equal(r1->to_column, "customer_id");
	assert_string_equal(r1->cardinality, "many-to-one");
	const pb_relationship *r2 = relationship(c, "order_lines", "order_id");
	assert_string_equal(r2->to_table, "orders");
	assert_string_equal(r2->to_column, "order_id");
	assert_int_equal(c->nwarnings, 0);
	contract_free(c);
}

static void v3_json_input(void **state)
{
	(void)state;
	pb_contract *c = load_ok("tests/fixtures/contracts/v3_minimal.json");
	assert_int_equal(c->odcs_major, 3);
	assert_string_equal(c->name, "json-contract"); /* no name: falls back to id */
	assert_string_equal(c->description, "A contract written as JSON.");
	const pb_table *t = table(c, "Products");
	assert_string_equal(t->physical_type, "view");
	/* missing logicalType: inferred from physicalType */
	const pb_column *price = column(t, "price");
	assert_string_equal(price->logical_type, "number");
	assert_int_equal(price->precision, 10);
	assert_int_equal(price->scale, 2);
	assert_string_equal(column(t, "stock")->logical_type, "integer");
	assert_string_equal(column(t, "launched")->logical_type, "date");
	assert_string_equal(column(t, "active")->logical_type, "boolean");
	const pb_column *w = column(t, "weight"); /* customProperties precision/scale */
	assert_int_equal(w->precision, 12);
	assert_int_equal(w->scale, 3);
	const pb_server *s = contract_server(c, "wh");
	assert_string_equal(s->type, "snowflake"); /* lower-cased */
	assert_string_equal(server_field(s, "port"), "443");
	contract_free(c);
}

static void json_errors_have_line_and_column(void **state)
{
	(void)state;
	expect_error("{\n  \"id\": 1,\n  \"id\": 2\n}", "~t.yaml:3:");
	expect_error("{\n  \"id\": 1,\n  \"id\": 2\n}", "~duplicate");
	expect_error("{\n  \"a\": [1, 2,\n}", "~t.yaml:3:1: JSON syntax error");
	/* jansson quotes the source near the error: still one line */
	expect_error("{\"apiVersion\": \"act\\\\\\\n\n\"}", "~JSON syntax error");
	/* JSON is detected by its first non-blank byte */
	pb_contract *c = parse_ok("  \n{\"apiVersion\":\"v3.1.0\",\"kind\":\"DataContract\",\"id\":\"x\",\"version\":\"1\","
				  "\"status\":\"draft\",\"schema\":[{\"name\":\"a\",\"properties\":[{\"name\":\"b\"}]}]}");
	assert_string_equal(c->tables[0].columns[0].logical_type, "string");
	contract_free(c);
}

static void v2_list_shape(void **state)
{
	(void)state;
	pb_contract *c = load_ok("tests/fixtures/contracts/v2_list.yaml");
	assert_int_equal(c->odcs_major, 2);
	assert_string_equal(c->id, "7f1c2a44-0000-4000-8000-000000000001");
	assert_string_equal(c->name, "seller_views");
	assert_string_equal(c->api_version, "v2.2.2");
	assert_string_equal(c->domain, "seller");
	assert_string_equal(c->description, "Views built on top of the seller tables.");
	const pb_table *t = table(c, "payments");
	assert_string_equal(t->physical_name, "payments_v1");
	assert_string_equal(t->physical_type, "table");
	const pb_column *id = column(t, "txn_id");
	assert_string_equal(id->logical_type, "integer");
	assert_true(id->primary_key);
	assert_true(id->required);
	assert_int_equal(id->primary_key_position, 1);
	const pb_column *amount = column(t, "amount");
	assert_string_equal(amount->logical_type, "number");
	assert_int_equal(amount->precision, 18);
	assert_int_equal(amount->scale, 4);
	assert_false(amount->required);
	assert_string_equal(column(t, "paid_at")->logical_type, "timestamp");
	assert_string_equal(column(t, "note")->logical_type, "string");
	assert_true(column(t, "note")->unique);
	assert_string_equal(column(t, "location")->logical_type, "string");
	assert_string_equal(column(t, "flag")->logical_type, "boolean");
	assert_string_equal(column(t, "score")->logical_type, "integer"); /* Numeric over int4 */
	assert_true(has_warning(c, "dataset[0].columns[4].logicalType: \"geo-point\" is not a known type; read as string"));

	const pb_server *s = contract_server(c, "default");
	assert_non_null(s);
	assert_string_equal(s->type, "postgresql");
	assert_string_equal(server_field(s, "server"), "db.example.com:5432");
	assert_string_equal(server_field(s, "host"), "db.example.com");
	assert_string_equal(server_field(s, "port"), "5432");
	assert_string_equal(server_field(s, "database"), "sellers");
	assert_null(server_field(s, "password")); /* secrets never kept */
	assert_true(has_warning(c, "password: not kept"));
	contract_free(c);
}

static void v2_tables_variant(void **state)
{
	(void)state;
	pb_contract *c = load_ok("tests/fixtures/contracts/v2_tables.yaml");
	assert_int_equal(c->odcs_major, 2);
	assert_string_equal(c->api_version, "2.2.0"); /* standardVersion */
	assert_string_equal(c->name, c->id);
	assert_int_equal(c->ntables, 2);
	const pb_column *dep = column(table(c, "department"), "departmentid");
	assert_true(dep->primary_key);
	assert_true(dep->required);
	assert_string_equal(dep->logical_type, "integer");
	assert_string_equal(column(table(c, "department"), "name")->logical_type, "string");
	assert_string_equal(table(c, "employee")->physical_name, "employee");
	const pb_server *s = contract_server(c, NULL);
	assert_string_equal(s->name, "default");
	assert_string_equal(s->type, "postgresql"); /* from the JDBC driver */
	assert_string_equal(server_field(s, "host"), "localhost");
	expect_error("uuid: x\ndataset:\n  tables: {}\n", "dataset.tables: expected a list, got a mapping");
	expect_error("uuid: x\ndataset:\n  - table: a\n    columns:\n      - column: b\n      - logicalType: int\n",
		     "dataset[0].columns[1].column: required");
	contract_free(c);
}

static void databricks_server_custom(void **state)
{
	(void)state;
	pb_contract *c = load_ok("examples/contracts/events-databricks.odcs.yaml");
	const pb_server *s = contract_server(c, "production");
	assert_string_equal(s->type, "databricks");
	assert_string_equal(server_field(s, "catalog"), "analytics");
	assert_string_equal(server_field(s, "schema"), "web");
	assert_string_equal(server_field(s, "host"), "adb-1234567890123456.7.azuredatabricks.net");
	assert_int_equal(s->ncustom, 1);
	assert_string_equal(s->custom[0].key, "httpPath");
	assert_string_equal(server_field(s, "httpPath"), "/sql/1.0/warehouses/abc123def456");
	const pb_relationship *r = relationship(c, "events", "user_id");
	assert_string_equal(r->to_table, "users");
	assert_null(r->cardinality);
	contract_free(c);
}

/* ODCS v2 with a `servers` block: a mapping of name -> server (the form v2-era contracts use)
 * or a list; the top-level connection comes after, as "default". Numbers keep the text they
 * were written with. */
static void v2_servers_and_numbers(void **state)
{
	(void)state;
	pb_contract *c = parse_ok("apiVersion: v2.2.2\nuuid: u\ndatasetName: d\nserver: db.example.com:5432\n"
				  "driver: jdbc:postgresql\nservers:\n  production:\n    type: Snowflake\n"
				  "    account: acme\n    database: SALES\n    schema: PUBLIC\n    warehouse: WH\n"
				  "    ratio: 2.002\n    tiers: [0.1, 2.002, 3]\n  lake:\n    type: databricks\n"
				  "    host: adb.example.net\n    customProperties:\n      - property: httpPath\n"
				  "        value: /sql/1.0/x\n"
				  "dataset:\n  - table: t\n    columns: [{column: a, logicalType: string}]\n");
	assert_int_equal(c->nservers, 3);
	assert_string_equal(c->servers[0].name, "production");
	assert_string_equal(c->servers[0].type, "snowflake");
	assert_string_equal(server_field(&c->servers[0], "schema"), "PUBLIC");
	assert_string_equal(server_field(&c->servers[0], "ratio"), "2.002");
	assert_string_equal(server_field(&c->servers[0], "tiers"), "[\"0.1\",\"2.002\",3]"); /* YAML floats stay text */
	assert_string_equal(c->servers[1].name, "lake");
	assert_string_equal(server_field(&c->servers[1], "httpPath"), "/sql/1.0/x");
	assert_string_equal(c->servers[2].name, "default");
	assert_string_equal(c->servers[2].type, "postgresql");
	assert_false(has_warning(c, "servers: unknown"));
	contract_free(c);
	c = parse_ok("uuid: u\nservers:\n  - server: s\n    type: databricks\n    catalog: c\n"
		     "dataset:\n  - table: t\n    columns: [{column: a}]\n");
	assert_int_equal(c->nservers, 1);
	assert_string_equal(server_field(&c->servers[0], "catalog"), "c");
	contract_free(c);
	expect_error("uuid: u\nservers: snowflake\ndataset:\n  - table: t\n    columns: [{column: a}]\n",
		     "servers: expected a list or a mapping, got text");
	expect_error("uuid: u\nservers:\n  p: {account: a}\ndataset:\n  - table: t\n    columns: [{column: a}]\n",
		     "servers.p.type: required");
	/* ODCS v3 keeps its list */
	expect_error(V3_HEAD "servers:\n  p: {type: snowflake}\nschema:\n  - name: a\n    properties: [{name: x}]\n",
		     "servers: expected a list, got a mapping");
	/* JSON numbers: the shortest text that reads back the same, not 17 digits */
	c = parse_ok("{\"apiVersion\":\"v3.1.0\",\"kind\":\"DataContract\",\"id\":\"t\",\"version\":\"1\","
		     "\"status\":\"draft\",\"servers\":[{\"server\":\"p\",\"type\":\"snowflake\",\"ratio\":2.002,"
		     "\"big\":0.30000000000000004,\"tiers\":[0.1,2.002,{\"x\":1e300}]}],"
		     "\"schema\":[{\"name\":\"a\",\"properties\":[{\"name\":\"x\"}]}]}");
	assert_string_equal(server_field(&c->servers[0], "ratio"), "2.002");
	assert_string_equal(server_field(&c->servers[0], "big"), "0.30000000000000004");
	assert_string_equal(server_field(&c->servers[0], "tiers"), "[0.1,2.002,{\"x\":1e300}]");
	contract_free(c);
}

/* ---- the JSON shape ---------------------------------------------------------------- */

static void to_json_shape(void **state)
{
	(void)state;
	pb_contract *c = load_ok("examples/contracts/orders.odcs.yaml");
	json_t *j = contract_to_json(c);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "id")), "urn:datacontract:sales:orders");
	assert_int_equal(json_integer_value(json_object_get(j, "odcs_major")), 3);
	json_t *t0 = json_array_get(json_object_get(j, "tables"), 0);
	assert_string_equal(json_string_value(json_object_get(t0, "physical_type")), "table");
	json_t *c0 = json_array_get(json_object_get(t0, "columns"), 0);
	assert_true(json_is_true(json_object_get(c0, "primary_key")));
	assert_int_equal(json_integer_value(json_object_get(c0, "primary_key_position")), 1);
	assert_int_equal(json_integer_value(json_object_get(c0, "precision")), 38);
	json_t *c1 = json_array_get(json_object_get(t0, "columns"), 1);
	assert_null(json_object_get(c1, "precision"));            /* unknown: omitted */
	assert_null(json_object_get(c1, "primary_key_position")); /* 0: omitted */
	assert_null(json_object_get(c1, "business_name"));        /* absent: omitted */
	json_t *s0 = json_array_get(json_object_get(j, "servers"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(s0, "fields"), "warehouse")), "REPORTING_WH");
	assert_true(json_is_object(json_object_get(s0, "custom")));
	json_t *r0 = json_array_get(json_object_get(j, "relationships"), 0);
	assert_string_equal(json_string_value(json_object_get(r0, "cardinality")), "many-to-one");
	assert_true(json_is_array(json_object_get(j, "warnings")));
	json_decref(j);
	contract_free(c);
}

/* ---- errors name the place ------------------------------------------------------------ */

static void unknown_logical_type(void **state)
{
	(void)state;
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: x\n        logicalType: string\n"
			     "      - name: y\n        logicalType: strng\n",
		     "schema[0].properties[1].logicalType: unknown type \"strng\"");
	/* user text in a message stays on one line */
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: x\n        logicalType: \"str\\nng\"\n",
		     "schema[0].properties[0].logicalType: unknown type \"str\\nng\"");
	/* a v2-style type in a v3 contract is not a v3 type */
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: x\n        logicalType: bigint\n",
		     "schema[0].properties[0].logicalType: unknown type \"bigint\"");
}

static void yaml_syntax_error_has_line_and_column(void **state)
{
	(void)state;
	expect_error(V3_HEAD "schema:\n  - name: a\n   bad: [1, 2\n", "~t.yaml:");
	expect_error("a: b\nc: [1, 2\n", "~t.yaml:3:1: YAML syntax error: did not find expected ',' or ']'");
	expect_error("a: 1\n\tb: 2\n", "~t.yaml:2:");
	/* duplicate mapping keys are errors at the second key */
	expect_error("a: 1\nb:\n  c: 1\n  c: 2\n", "t.yaml:4:3: duplicate key \"c\"");
	expect_error("a: 1\n---\nb: 2\n", "~more than one YAML document");
	expect_error("? [a, b]\n: c\n", "~mapping keys must be plain text");
	expect_error("a: *nowhere\n", "t.yaml:1:4: alias *nowhere names no anchor defined before it");
}

static void not_a_contract(void **state)
{
	(void)state;
	expect_error("- a\n- b\n", "t.yaml: not an ODCS contract: the document is a list, not a mapping");
	expect_error("just text\n", "t.yaml: not an ODCS contract: the document is text, not a mapping");
	expect_error("", "t.yaml: empty document, not an ODCS contract");
	expect_error("foo: 1\nbar: 2\n", "t.yaml: not an ODCS contract (it has neither \"schema\" nor \"dataset\")");
	expect_error("[1, 2]", "t.yaml: not an ODCS contract: the document is a list, not a mapping");
}

static void no_tables_and_no_columns(void **state)
{
	(void)state;
	expect_error(V3_HEAD "schema: []\n", "schema: the contract has no tables");
	expect_error(V3_HEAD, "schema: required (the contract has no tables)");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: x\n  - name: b\n",
		     "schema[1].properties: table \"b\" has no columns (Power BI cannot have a table without columns)");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties: []\n",
		     "schema[0].properties: table \"a\" has no columns (Power BI cannot have a table without columns)");
	expect_error("uuid: x\ndataset:\n  - table: t\n", "dataset[0].columns: table \"t\" has no columns (Power BI cannot "
							   "have a table without columns)");
}

#define WHY " (Power BI compares names without case and after Unicode normalization)"

static void duplicates_without_case(void **state)
{
	(void)state;
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: id\n      - name: x\n      - name: y\n"
			     "      - name: ID\n",
		     "schema[0].properties[3].name: duplicate column \"ID\", the same name as properties[0] \"id\"" WHY);
	expect_error(V3_HEAD "schema:\n  - name: Orders\n    properties: [{name: a}]\n  - name: b\n    properties: [{name: a}]\n"
			     "  - name: ORDERS\n    properties: [{name: a}]\n",
		     "schema[2].name: duplicate table \"ORDERS\", the same name as schema[0] \"Orders\"" WHY);
	expect_error("uuid: x\ndataset:\n  - table: t\n    columns:\n      - column: Amount\n      - column: amount\n",
		     "dataset[0].columns[1].column: duplicate column \"amount\", the same name as columns[0] \"Amount\"" WHY);
	/* several repeats: the first in document order, with its own original (not the first
	 * name that has a repeat somewhere) */
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: b\n      - name: a\n"
			     "      - name: c\n      - name: A\n      - name: B\n      - name: a_\n",
		     "schema[0].properties[3].name: duplicate column \"A\", the same name as properties[1] \"a\"" WHY);
	{
		/* many names (the set grows past its first size), the repeat last */
		sbuf b;
		sbuf_init(&b, 1 << 20);
		assert_int_equal(sbuf_adds(&b, V3_HEAD "schema:\n  - name: t\n    properties:\n"), 0);
		for (int i = 0; i < 300; i++)
			assert_int_equal(sbuf_addf(&b, "      - name: Column %d\n", i), 0);
		assert_int_equal(sbuf_adds(&b, "      - name: COLUMN 150\n"), 0);
		expect_error(sbuf_str(&b), "schema[0].properties[300].name: duplicate column \"COLUMN 150\", the same name "
					   "as properties[150] \"Column 150\"" WHY);
		sbuf_release(&b);
	}
	/* letters beyond ASCII fold too */
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: caf\xc3\xa9\n      - name: CAF\xc3\x89\n",
		     "schema[0].properties[1].name: duplicate column \"CAF\xc3\x89\", the same name as properties[0] \"caf\xc3\xa9\"" WHY);
	expect_error(V3_HEAD "schema:\n  - name: \xd0\xb7\xd0\xb0\xd0\xba\xd0\xb0\xd0\xb7\n    properties: [{name: a}]\n"
			     "  - name: \xd0\x97\xd0\x90\xd0\x9a\xd0\x90\xd0\x97\n    properties: [{name: a}]\n",
		     "~schema[1].name: duplicate table");
	/* look-alikes: "Caf\u00e9" composed and "Cafe\u0301" decomposed are one name (Unicode NFC) */
	expect_error(V3_HEAD "schema:\n  - name: Caf\xc3\xa9\n    properties: [{name: a}]\n"
			     "  - name: cafe\xcc\x81\n    properties: [{name: a}]\n",
		     "schema[1].name: duplicate table \"cafe\xcc\x81\", the same name as schema[0] \"Caf\xc3\xa9\"" WHY);
	expect_error(V3_HEAD "schema:\n  - name: t\n    properties:\n      - name: x\n      - name: Cafe\xcc\x81\n"
			     "      - name: CAF\xc3\x89\n",
		     "schema[0].properties[2].name: duplicate column \"CAF\xc3\x89\", the same name as properties[1] "
		     "\"Cafe\xcc\x81\"" WHY);
	expect_error("uuid: x\ndataset:\n  - table: Caf\xc3\xa9\n    columns: [{column: a}]\n"
		     "  - table: Cafe\xcc\x81\n    columns: [{column: a}]\n",
		     "~dataset[1].table: duplicate table");
	/* full case folding: the Kelvin sign is k, long s is s, sharp s is ss */
	expect_error(V3_HEAD "schema:\n  - name: t\n    properties:\n      - name: \xe2\x84\xaa" "ey\n      - name: key\n",
		     "~schema[0].properties[1].name: duplicate column");
	expect_error(V3_HEAD "schema:\n  - name: t\n    properties:\n      - name: Stra\xc3\x9f" "e\n      - name: STRASSE\n",
		     "~schema[0].properties[1].name: duplicate column");
	/* different letters stay different */
	pb_contract *d = parse_ok(V3_HEAD "schema:\n  - name: t\n    properties:\n      - name: cafe\n      - name: caf\xc3\xa9\n"
					  "      - name: caf\xc3\xa8\n");
	assert_int_equal(d->tables[0].ncolumns, 3);
	contract_free(d);
	/* the same column name in two tables is fine */
	pb_contract *c = parse_ok(V3_HEAD "schema:\n  - name: a\n    properties: [{name: id}]\n  - name: b\n"
					  "    properties: [{name: id}]\n");
	contract_free(c);
}

static void invalid_utf8(void **state)
{
	(void)state;
	const char text[] = "id: x\nname: caf\xc3\n";
	expect_err(text, sizeof text - 1, PB_EINVAL, "t.yaml:2:10: invalid UTF-8 at byte offset 15");
	const char json[] = "{\"a\": \"\xff\"}";
	expect_err(json, sizeof json - 1, PB_EINVAL, "~invalid UTF-8 at byte offset 7");
	const char nul[] = "a: \"x\\0y\"\n";
	expect_err(nul, sizeof nul - 1, PB_EINVAL, "~NUL character");
}

static void missing_names(void **state)
{
	(void)state;
	expect_error(V3_HEAD "schema:\n  - physicalName: a\n    properties: [{name: x}]\n", "schema[0].name: required");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: x\n      - logicalType: string\n",
		     "schema[0].properties[1].name: required");
	expect_error(V3_HEAD "schema:\n  - name: \"\"\n    properties: [{name: x}]\n", "schema[0].name: must not be empty");
	expect_error(V3_HEAD "schema:\n  - name: \"a\\nb\"\n    properties: [{name: x}]\n",
		     "schema[0].name: contains a control character (byte 0x0a)");
}

static void wrong_node_kinds(void **state)
{
	(void)state;
	expect_error(V3_HEAD "schema: orders\n", "schema: expected a list, got text");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      name: x\n",
		     "schema[0].properties: expected a list, got a mapping");
	expect_error(V3_HEAD "schema:\n  - just-a-name\n", "schema[0]: expected a mapping, got text");
	expect_error(V3_HEAD "schema:\n  - name: [a, b]\n    properties: [{name: x}]\n", "schema[0].name: expected text, got a list");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: x\n        required: yes\n",
		     "schema[0].properties[0].required: expected true or false, got text");
	expect_error(V3_HEAD "servers: {type: snowflake}\nschema:\n  - name: a\n    properties: [{name: x}]\n",
		     "servers: expected a list, got a mapping");
	expect_error(V3_HEAD "servers:\n  - server: s\nschema:\n  - name: a\n    properties: [{name: x}]\n",
		     "servers[0].type: required");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: x\n        primaryKeyPosition: first\n",
		     "schema[0].properties[0].primaryKeyPosition: expected a whole number, got text");
}

/* A contract whose one table is named `unit` repeated n times (and one column named so). */
static char *long_name_contract(const char *unit, int n)
{
	size_t u = strlen(unit), cap = 256 + 2 * u * (size_t)n;
	char *text = malloc(cap);
	assert_non_null(text);
	size_t k = (size_t)snprintf(text, cap, "%sschema:\n  - name: ", V3_HEAD);
	for (int i = 0; i < n; i++, k += u)
		memcpy(text + k, unit, u);
	k += (size_t)snprintf(text + k, cap - k, "\n    properties:\n      - name: ");
	for (int i = 0; i < n; i++, k += u)
		memcpy(text + k, unit, u);
	memcpy(text + k, "\n", 2);
	return text;
}

static void long_name_ok(const char *unit, int n)
{
	char *text = long_name_contract(unit, n);
	pb_contract *c = parse_ok(text);
	assert_int_equal(strlen(c->tables[0].name), strlen(unit) * (size_t)n);
	contract_free(c);
	free(text);
}

static void long_name_refused(const char *unit, int n, const char *msg)
{
	char *text = long_name_contract(unit, n);
	expect_err(text, strlen(text), PB_EINVAL, msg);
	free(text);
}

static void limits(void **state)
{
	(void)state;
	/* nesting: YAML and JSON */
	char deep[400];
	size_t n = 0;
	for (int i = 0; i < PB_CONTRACT_MAX_DEPTH + 5; i++)
		deep[n++] = '[';
	deep[n] = '\0';
	expect_err(deep, n, PB_ELIMIT, "~nesting deeper than 64 levels");
	char deepj[400];
	n = 0;
	deepj[n++] = '{';
	deepj[n++] = '"';
	deepj[n++] = 'a';
	deepj[n++] = '"';
	deepj[n++] = ':';
	for (int i = 0; i < PB_CONTRACT_MAX_DEPTH + 5; i++)
		deepj[n++] = '[';
	deepj[n] = '\0';
	expect_err(deepj, n, PB_ELIMIT, "~nesting deeper than 64 levels");
	/* the same bounds on well-formed JSON, which the fast reader takes without the prescan:
	 * it must give up at the prescan's bounds, so the message and its place stay the
	 * prescan's (the 65th level opens at column 68 of line 2) */
	memcpy(deepj, "{\n\"a\":", 6);
	n = 6;
	for (int i = 0; i < PB_CONTRACT_MAX_DEPTH + 5; i++)
		deepj[n++] = '[';
	for (int i = 0; i < PB_CONTRACT_MAX_DEPTH + 5; i++)
		deepj[n++] = ']';
	deepj[n++] = '}';
	deepj[n] = '\0';
	expect_err(deepj, n, PB_ELIMIT, "t.yaml:2:68: nesting deeper than 64 levels");
	{
		/* 1 + the object + the array + a comma per item after the first: exactly the bound */
		size_t items = PB_CONTRACT_MAX_NODES - 2, cap = 16 + items * 2;
		char *many = malloc(cap);
		assert_non_null(many);
		memcpy(many, "{\"a\":[", 6);
		n = 6;
		for (size_t i = 0; i < items; i++) {
			many[n++] = '0';
			many[n++] = ',';
		}
		n--;
		memcpy(many + n, "]}", 2);
		n += 2;
		expect_err(many, n, PB_EINVAL, "~not an ODCS contract");
		memcpy(many + n - 2, ",0]}", 5);        /* one comma more: past it */
		n += 2;
		expect_err(many, n, PB_ELIMIT, "t.yaml:1:2000002: more than 1000000 values");
		free(many);
	}
	/* "billion laughs": aliases are charged at their expanded size */
	const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
			   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
			   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
			   "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
	expect_err(bomb, strlen(bomb), PB_ELIMIT, "~more than 1000000 values");
	/* document size */
	size_t big = PB_CONTRACT_MAX_BYTES + 1;
	char *text = malloc(big);
	assert_non_null(text);
	memset(text, ' ', big);
	expect_err(text, big, PB_ELIMIT, "t.yaml: contract is larger than 16777216 bytes");
	free(text);
	/* names: Power BI's 512 characters (UTF-16 units), whatever the bytes */
	long_name_ok("\xc3\xa9", 512);          /* 512 x e-acute: 1024 bytes */
	long_name_ok("\xe2\x82\xac", 512);      /* 512 x euro sign: 1536 bytes */
	long_name_ok("\xf0\x9f\x98\x80", 256); /* 256 emoji: 2 units each */
	long_name_refused("n", 513, "schema[0].name: table name of 513 characters; Power BI allows at most 512 "
				    "(\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...\")");
	long_name_refused("\xf0\x9f\x98\x80", 257, "~schema[0].name: table name of 514 characters; Power BI allows at most 512");
	long_name_refused("n", 5000, "~schema[0].name: table name of 5000 characters; Power BI allows at most 512 (\"nnn");
}

/* The rules behind the four deliberately bad corpus files, on contracts of our own. */
static void standard_violations(void **state)
{
	(void)state;
	expect_error("apiVersion: v3.0.2\nkind: DataContract\nid: x\nversion: 1.0.0\nschema:\n  - name: a\n"
		     "    properties: [{name: x}]\n",
		     "status: required");
	expect_error("apiVersion: v3.1.0\nkind: DataContract\nid: x\nstatus: draft\nschema: []\n", "version: required");
	expect_error(V3_HEAD "owner_team: data\nschema:\n  - name: a\n    properties: [{name: x}]\n",
		     "owner_team: unknown top-level key (ODCS v3 allows extra data only under customProperties)");
	expect_error(V3_HEAD "schema:\n  - name: a\n    description:\n    properties: [{name: x}]\n",
		     "schema[0].description: expected text, got null");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: x\n        description: ~\n",
		     "schema[0].properties[0].description: expected text, got null");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: x\n        logicalType: integer\n"
			     "        physicalType: varchar(10)\n",
		     "schema[0].properties[0].logicalType: \"integer\" contradicts physicalType \"varchar(10)\"");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: x\n        logicalType: date\n"
			     "        physicalType: BOOLEAN\n",
		     "schema[0].properties[0].logicalType: \"date\" contradicts physicalType \"BOOLEAN\"");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: x\n        logicalType: integer\n"
			     "        physicalType: DECIMAL(10,2)\n",
		     "schema[0].properties[0].logicalType: \"integer\" contradicts physicalType \"DECIMAL(10,2)\"");
	/* compatible pairs and unknown physical types are fine */
	pb_contract *c = parse_ok(V3_HEAD "schema:\n  - name: a\n    properties:\n"
				  "      - {name: a, logicalType: date, physicalType: timestamp_tz}\n"
				  "      - {name: b, logicalType: number, physicalType: int4}\n"
				  "      - {name: c, logicalType: string, physicalType: uuid}\n"
				  "      - {name: d, logicalType: integer, physicalType: AccountNumber}\n"
				  "      - {name: e, logicalType: String, physicalType: text}\n"
				  "      - {name: f, logicalType: date, physicalType: varchar}\n");
	assert_string_equal(c->tables[0].columns[4].logical_type, "string");
	contract_free(c);
}

static void nested_properties_rule(void **state)
{
	(void)state;
	pb_contract *c = parse_ok(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: id\n"
				  "      - name: address\n        logicalType: object\n        physicalType: struct<city:string>\n"
				  "        properties:\n          - name: city\n            logicalType: string\n"
				  "          - name: geo\n            logicalType: object\n            properties:\n"
				  "              - {name: lat, logicalType: number}\n"
				  "      - name: tags\n        logicalType: array\n        items:\n          logicalType: string\n"
				  "      - name: attrs\n        physicalType: map<string,bigint>\n");
	const pb_table *t = &c->tables[0];
	assert_int_equal(t->ncolumns, 4); /* nested fields are not columns */
	assert_string_equal(column(t, "address")->logical_type, "string");
	assert_string_equal(column(t, "address")->physical_type, "struct<city:string>");
	assert_string_equal(column(t, "tags")->logical_type, "string");
	assert_string_equal(column(t, "attrs")->logical_type, "string");
	assert_true(has_warning(c, "schema[0].properties[1]: \"address\" is an object: kept as one text column (JSON); "
				   "its 3 nested fields are not columns"));
	assert_true(has_warning(c, "schema[0].properties[2]: \"tags\" is an array: kept as one text column (JSON); "
				   "its 1 nested field is not a column"));
	assert_true(has_warning(c, "schema[0].properties[3]: \"attrs\" is a struct"));
	contract_free(c);
	/* nested fields are still checked, with their place */
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: o\n        logicalType: object\n"
			     "        properties:\n          - name: \"\"\n",
		     "schema[0].properties[0].properties[0].name: must not be empty");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: o\n        logicalType: object\n"
			     "        properties:\n          - name: p\n            logicalType: strng\n",
		     "schema[0].properties[0].properties[0].logicalType: unknown type \"strng\"");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: o\n        logicalType: array\n"
			     "        items:\n          logicalType: string\n          physicalType: INT64\n",
		     "schema[0].properties[0].items.logicalType: \"string\" contradicts physicalType \"INT64\"");
}

static void relationships(void **state)
{
	(void)state;
	pb_contract *c = parse_ok(
		V3_HEAD "schema:\n"
		"  - name: customers\n    id: cust\n    properties:\n"
		"      - {name: id, id: cust_id, primaryKey: true}\n      - {name: country, id: cust_cc}\n"
		"  - name: orders\n    properties:\n"
		"      - name: customer_id\n        relationships:\n          - to: customers.id\n"
		"          - to: other.yaml#schema/x/properties/y\n"
		"      - name: cc\n        relationships:\n          - to: schema/cust/properties/cust_cc\n"
		"      - name: missing_ref\n        relationships:\n          - to: receivers.id\n"
		"    relationships:\n"
		"      - from: [orders.customer_id, orders.cc]\n        to: [customers.id, customers.country]\n"
		"      - from: orders.customer_id\n        to: customers.id\n"
		"      - from: orders.missing_ref\n        to: [customers.id, customers.country]\n");
	assert_int_equal(c->nrelationships, 2);
	assert_string_equal(relationship(c, "orders", "customer_id")->to_column, "id");
	const pb_relationship *r = relationship(c, "orders", "cc");
	assert_string_equal(r->to_table, "customers");
	assert_string_equal(r->to_column, "country");
	assert_true(has_warning(c, "schema[1].properties[0].relationships[1].to: \"other.yaml#schema/x/properties/y\" "
				   "refers to another contract; relationship skipped"));
	assert_true(has_warning(c, "schema[1].properties[2].relationships[0].to: \"receivers.id\" names no column of "
				   "this contract; relationship skipped"));
	assert_true(has_warning(c, "schema[1].relationships[0]: composite key (2 columns) skipped"));
	assert_true(has_warning(c, "schema[1].relationships[2]: from has 1 columns but to has 2; relationship skipped"));
	contract_free(c);
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties: [{name: x}]\n    relationships:\n      - to: a.x\n",
		     "schema[0].relationships[0].from: required");
	expect_error(V3_HEAD "schema:\n  - name: a\n    properties:\n      - name: x\n        relationships:\n"
			     "          - to: {table: a}\n",
		     "schema[0].properties[0].relationships[0].to: expected a reference (text or a list of texts), got a mapping");
}

static void warnings_not_errors(void **state)
{
	(void)state;
	pb_contract *c = parse_ok(V3_HEAD "schema:\n  - name: a\n    physicalType: topic\n    colour: blue\n"
				  "    properties:\n      - name: x\n        flavour: vanilla\n"
				  "servers:\n  - server: s\n    type: postgres\n    host: h\n    password: hunter2\n"
				  "    customProperties:\n      - {property: apiToken, value: t0k}\n"
				  "      - {property: role, value: reader}\n");
	assert_true(has_warning(c, "schema[0].colour: unknown key, ignored"));
	assert_true(has_warning(c, "schema[0].properties[0].flavour: unknown key, ignored"));
	assert_true(has_warning(c, "schema[0].physicalType: \"topic\" read as a table"));
	assert_true(has_warning(c, "servers[0].password: not kept"));
	const pb_server *s = contract_server(c, "s");
	assert_null(server_field(s, "password"));
	assert_null(server_field(s, "apiToken"));
	assert_string_equal(server_field(s, "role"), "reader");
	assert_string_equal(c->tables[0].physical_type, "table");
	json_t *j = contract_to_json(c);
	char *dump = json_dumps(j, JSON_COMPACT);
	assert_null(strstr(dump, "hunter2"));
	assert_null(strstr(dump, "t0k"));
	free(dump);
	json_decref(j);
	contract_free(c);
}

static void yaml_scalars_and_anchors(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	json_t *v = NULL;
	const char *doc = "version: 1.10\nn: 7\nq: \"7\"\nb: true\nz: ~\ns: !!str 12\n"
			  "base: &base {x: 1, y: 2}\nm:\n  <<: *base\n  y: 3\nl: [*base]\n";
	assert_int_equal(yamltree_load(doc, strlen(doc), "d.yaml", &v, err), PB_OK);
	assert_string_equal(json_string_value(json_object_get(v, "version")), "1.10");
	assert_int_equal(json_integer_value(json_object_get(v, "n")), 7);
	assert_string_equal(json_string_value(json_object_get(v, "q")), "7");
	assert_true(json_is_true(json_object_get(v, "b")));
	assert_true(json_is_null(json_object_get(v, "z")));
	assert_string_equal(json_string_value(json_object_get(v, "s")), "12");
	json_t *m = json_object_get(v, "m");
	assert_int_equal(json_integer_value(json_object_get(m, "x")), 1);
	assert_int_equal(json_integer_value(json_object_get(m, "y")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(v, "l"), 0), "y")), 2);
	json_decref(v);
	/* version written as a plain float stays text in the model */
	pb_contract *c = parse_ok("apiVersion: v3.1.0\nkind: DataContract\nid: 42\nversion: 2.10\nstatus: draft\n"
				  "schema:\n  - name: a\n    properties: [{name: x, primaryKeyPosition: 2}]\n");
	assert_string_equal(c->version, "2.10");
	assert_string_equal(c->id, "42");
	assert_int_equal(c->tables[0].columns[0].primary_key_position, 2);
	contract_free(c);
}

static void load_errors(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	pb_contract *c = (pb_contract *)1;
	assert_int_equal(contract_load("/nonexistent/contract.yaml", &c, err), PB_ENOTFOUND);
	assert_null(c);
}

/* ---- the public corpus ------------------------------------------------------------- */

/* Contracts the corpus holds that must fail, and why. */
static const struct {
	const char *file;
	const char *error;
} corpus_bad[] = {
	{"lint/invalid.odcs.yaml", "status: required"},
	{"lint/odcs_with_extra_top_level.yaml", "change_management: unknown top-level key"},
	{"lint/invalid_multiple_schema_errors.odcs.yaml", "schema[0].description: expected text, got null"},
	{"parquet/datacontract_invalid_logical_types_example.yaml", "contradicts physicalType"},
	/* valid ODCS with `schema: []`: nothing Power BI could import */
	{"basic-four-dpo.odcs.yaml", "schema: the contract has no tables"},
	{"database-table-sla.odcs.yaml", "schema: the contract has no tables"},
};

static int corpus_walk(const char *dir, int *good, int *bad)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096], err[PB_ERR_MAX];
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		assert_int_equal(xsnprintf(path, sizeof path, "%s/%s", dir, e->d_name), 0);
		if (stat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			corpus_walk(path, good, bad);
			continue;
		}
		size_t n = strlen(path);
		if (n < 5 || strcmp(path + n - 5, ".yaml"))
			continue;
		const char *want = NULL;
		for (size_t i = 0; i < sizeof corpus_bad / sizeof corpus_bad[0]; i++) {
			size_t m = strlen(corpus_bad[i].file);
			if (n > m && path[n - m - 1] == '/' && !strcmp(path + n - m, corpus_bad[i].file))
				want = corpus_bad[i].error;
		}
		pb_contract *c = NULL;
		int rc = contract_load(path, &c, err);
		if (want) {
			if (rc != PB_EINVAL || !strstr(err, want))
				fail_msg("%s: want error \"%s\", got rc %d \"%s\"", path, want, rc, rc ? err : "");
			(*bad)++;
			continue;
		}
		if (rc)
			fail_msg("%s: %s", path, err);
		assert_true(c->ntables > 0);
		for (size_t i = 0; i < c->ntables; i++)
			assert_true(c->tables[i].ncolumns > 0);
		json_t *j = contract_to_json(c);
		assert_non_null(j);
		json_decref(j);
		contract_free(c);
		(*good)++;
	}
	closedir(d);
	return 0;
}

static void corpus(void **state)
{
	(void)state;
	char dir[4096];
	if (!tu_corpus_path("odcs", "ODCS corpus", dir, sizeof dir))
		return;
	int good = 0, bad = 0;
	corpus_walk(dir, &good, &bad);
	printf("corpus: %d contracts parsed, %d refused as expected\n", good, bad);
	assert_int_equal(bad, (int)(sizeof corpus_bad / sizeof corpus_bad[0]));
	assert_true(good > 0);
}

/* A contract's tree is allocated in an arena that contract_parse drops: jansson values the
 * caller made before, during nothing, and after a parse (and fast_json_load's trees, which
 * callers keep) are malloc's and live and free as before, on a good parse and a failed one. */
static void tree_arena_leaves_other_values_alone(void **state)
{
	(void)state;
	char err[PB_ERR_MAX];
	static const char good[] = "{\"apiVersion\": \"v3.0.2\", \"kind\": \"DataContract\", \"id\": \"x\", "
				   "\"version\": \"1.0.0\", \"status\": \"active\", "
				   "\"schema\": [{\"name\": \"t\", \"properties\": [{\"name\": \"a\", "
				   "\"logicalType\": \"string\"}]}]}";
	static const char bad[] = "{\"apiVersion\": \"v3.0.0\", \"schema\": [{\"name\": ";
	json_t *before = json_pack("{s:s, s:[i, i]}", "k", "value made before", "n", 1, 2);
	static const char text[] = "{\"a\": [1, \"two\", {\"b\": null}]}";
	json_t *kept = fast_json_load(text, strlen(text));
	assert_non_null(before);
	assert_non_null(kept);
	for (int i = 0; i < 3; i++) {
		pb_contract *c = NULL;
		if (contract_parse(good, strlen(good), "t.json", &c, err))
			fail_msg("%s", err);
		assert_string_equal(c->tables[0].columns[0].name, "a");
		contract_free(c);
		assert_int_not_equal(contract_parse(bad, strlen(bad), "t.json", &c, err), 0);
		assert_null(c);
	}
	json_t *after = json_pack("{s:s}", "k", "value made after");
	assert_non_null(after);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(before, "n"), 1)), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(kept, "a"), 1)), "two");
	json_decref(before);
	json_decref(kept);
	json_decref(after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(v3_yaml_example),
		cmocka_unit_test(tree_arena_leaves_other_values_alone),
		cmocka_unit_test(v3_json_input),
		cmocka_unit_test(json_errors_have_line_and_column),
		cmocka_unit_test(v2_list_shape),
		cmocka_unit_test(v2_tables_variant),
		cmocka_unit_test(databricks_server_custom),
		cmocka_unit_test(v2_servers_and_numbers),
		cmocka_unit_test(to_json_shape),
		cmocka_unit_test(unknown_logical_type),
		cmocka_unit_test(yaml_syntax_error_has_line_and_column),
		cmocka_unit_test(not_a_contract),
		cmocka_unit_test(no_tables_and_no_columns),
		cmocka_unit_test(duplicates_without_case),
		cmocka_unit_test(invalid_utf8),
		cmocka_unit_test(missing_names),
		cmocka_unit_test(wrong_node_kinds),
		cmocka_unit_test(limits),
		cmocka_unit_test(standard_violations),
		cmocka_unit_test(nested_properties_rule),
		cmocka_unit_test(relationships),
		cmocka_unit_test(warnings_not_errors),
		cmocka_unit_test(yaml_scalars_and_anchors),
		cmocka_unit_test(load_errors),
		cmocka_unit_test(corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

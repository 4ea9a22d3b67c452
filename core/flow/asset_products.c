#include "core/flow/asset_products.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow/drift.h"
#include "core/store/assets.h"
#include "core/store/catalog.h"
#include "core/lang/contract.h"
#include "runtime/log.h"
#include "runtime/util.h"

#define TYPE_MODEL "powerbi_semantic_model"
#define TYPE_REPORT "powerbi_report"

const char *asset_logical_type(const char *t)
{
	static const struct { const char *pbi, *logical; } map[] = {
		{ "int64", "integer" }, { "double", "number" }, { "decimal", "number" }, { "currency", "number" },
		{ "boolean", "boolean" }, { "datetime", "timestamp" }, { "datetimezone", "timestamp" },
		{ "date", "date" }, { "time", "time" }, { "string", "string" },
	};
	for (size_t i = 0; t && i < sizeof map / sizeof map[0]; i++)
		if (str_ieq(t, map[i].pbi))
			return map[i].logical;
	return "string";
}

static json_t *custom(const char *property, const char *value)
{
	return json_pack("{s:s, s:s}", "property", property, "value", value ? value : "");
}

/* The contract schema (tables and columns) of a semantic model asset; PB_EINVAL when the
 * import brought no table schema. *out new. */
static int model_schema(const pb_asset *a, json_t **out, char *err)
{
	json_t *d = json_loads(a->details_json, 0, NULL), *schema = json_array(), *t;
	size_t i;
	*out = NULL;
	json_array_foreach(json_object_get(d, "tables"), i, t) {
		json_t *props = json_array(), *c;
		size_t k;
		json_array_foreach(json_object_get(t, "columns"), k, c) {
			const char *name = json_string_value(json_object_get(c, "name"));
			const char *ctype = json_string_value(json_object_get(c, "column_type"));
			/* RowNumber is Power BI's hidden internal column, not data */
			if (!name || !*name || (ctype && str_ieq(ctype, "RowNumber")))
				continue;
			json_t *p = json_pack("{s:s, s:s}", "name", name, "logicalType",
					      asset_logical_type(json_string_value(json_object_get(c, "data_type"))));
			if (p && json_is_true(json_object_get(c, "hidden")))
				json_object_set_new(p, "description", json_string("hidden in Power BI"));
			json_array_append_new(props, p);
		}
		const char *tname = json_string_value(json_object_get(t, "name"));
		if (tname && *tname && json_array_size(props))
			json_array_append_new(schema, json_pack("{s:s, s:s, s:o}", "name", tname, "physicalType", "table",
								"properties", props));
		else
			json_decref(props);
	}
	json_decref(d);
	if (!json_array_size(schema)) {
		json_decref(schema);
		return pb_err(err, PB_EINVAL, "semantic model '%s' has no table schema: its import had no detailed "
			      "metadata (turn on 'Enhance admin APIs responses with detailed metadata') or it was never "
			      "refreshed", a->name);
	}
	*out = schema;
	return 0;
}

/* An ODCS v3 contract for asset a (kind "semantic_model" or "report") over schema (stolen);
 * custom properties name the Power BI objects. *text new. */
static int contract_text(const pb_asset *a, json_t *schema, const char *purpose, json_t *customs, char **text,
			 char *err)
{
	char cid[PB_ID_BUF + 64];
	xsnprintf(cid, sizeof cid, "powerbi-%s-%s", a->kind, a->powerbi_id);
	json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:[{s:s, s:s}], s:o, s:o}", "apiVersion",
			      "v3.0.2", "kind", "DataContract", "id", cid, "name", a->name, "version", "1.0.0", "status",
			      "active", "description", "purpose", purpose, "servers", "server", "powerbi", "type", "powerbi",
			      "schema", schema, "customProperties", customs);
	*text = c ? json_dumps(c, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(c);
	return *text ? 0 : pb_err(err, PB_ENOMEM, "out of memory");
}

static int model_contract(const pb_asset *a, char **text, char *err)
{
	json_t *schema = NULL, *d = json_loads(a->details_json, 0, NULL);
	int rc = model_schema(a, &schema, err);
	if (!rc)
		rc = contract_text(a, schema, "Imported from a Power BI semantic model",
				   json_pack("[o, o, o]", custom("powerbiSemanticModelId", a->powerbi_id),
					     custom("powerbiWorkspaceId", a->workspace_powerbi_id),
					     custom("storageMode", json_string_value(json_object_get(d, "storage_mode")))),
				   text, err);
	json_decref(d);
	return rc;
}

/* A report's contract lists the tables of the model it reads. */
static int report_contract(const pb_asset *a, const pb_asset *model, const char *model_product_id, char **text,
			   char *err)
{
	json_t *schema = NULL;
	int rc = model_schema(model, &schema, err);
	if (!rc)
		rc = contract_text(a, schema, "Imported from a Power BI report; the schema is its semantic model's",
				   json_pack("[o, o, o]", custom("powerbiReportId", a->powerbi_id),
					     custom("powerbiWorkspaceId", a->workspace_powerbi_id),
					     custom("semanticModelDataProductId", model_product_id)),
				   text, err);
	return rc;
}

/* Imports text as the product's contract, typed in the same transaction. */
static int import_text(pb_db *db, const char *org_id, const char *text, const char *type, cat_product **out,
		       bool *created, char *err)
{
	pb_contract *c = NULL;
	cat_product *p = NULL;
	int rc = contract_parse(text, strlen(text), "generated contract", &c, err);
	*out = NULL;
	*created = false;
	if (!rc)
		rc = catalog_import_typed(db, org_id, c, text, strlen(text), type, &p, created, err);
	if (!rc)
		rc = catalog_product_get(db, org_id, p->id, true, out, err);
	catalog_product_free(p);
	contract_free(c);
	return rc;
}

static int create_for(pb_db *db, const char *org_id, const pb_asset *a, cat_product **out, char **linked,
		      bool *created, char *err)
{
	char *text = NULL;
	pb_asset *model = NULL;
	cat_product *mp = NULL;
	json_t *d = NULL;
	int rc;
	*linked = NULL;
	if (strcmp(a->state, "active"))
		return pb_err(err, PB_EINVAL, "asset %s was removed from Power BI", a->id);
	if (!strcmp(a->kind, "semantic_model")) {
		if (!(rc = model_contract(a, &text, err)))
			rc = import_text(db, org_id, text, TYPE_MODEL, out, created, err);
		goto out;
	}
	if (strcmp(a->kind, "report")) {
		rc = pb_err(err, PB_EINVAL, "a %s cannot become a data product (semantic models and reports can)", a->kind);
		goto out;
	}
	d = json_loads(a->details_json, 0, NULL);
	const char *ds = json_string_value(json_object_get(d, "dataset_id"));
	bool mc;
	if (!ds) {
		rc = pb_err(err, PB_EINVAL, "report '%s' has no semantic model (paginated report?)", a->name);
		goto out;
	}
	if ((rc = assets_get_by_powerbi_id(db, org_id, "semantic_model", ds, &model, err)) == PB_ENOTFOUND) {
		rc = pb_err(err, PB_EINVAL, "the semantic model of report '%s' was not imported", a->name);
		goto out;
	}
	if (rc || (rc = model_contract(model, &text, err)) ||
	    (rc = import_text(db, org_id, text, TYPE_MODEL, &mp, &mc, err)))
		goto out;
	free(text);
	text = NULL;
	if (!(*linked = xstrdup(mp->id))) {
		rc = pb_err(err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if (!(rc = report_contract(a, model, mp->id, &text, err)))
		rc = import_text(db, org_id, text, TYPE_REPORT, out, created, err);
out:
	json_decref(d);
	free(text);
	asset_free(model);
	catalog_product_free(mp);
	return rc;
}

int asset_product_create(pb_db *db, const char *org_id, const char *asset_id, json_t **out, bool *created, char *err)
{
	pb_asset *a = NULL;
	cat_product *p = NULL;
	char *linked = NULL;
	int rc = assets_get(db, org_id, asset_id, &a, err);
	*out = NULL;
	if (!rc)
		rc = create_for(db, org_id, a, &p, &linked, created, err);
	/* asked again: the product takes the model's schema as it is now, drift and all */
	if (!rc && !*created)
		rc = drift_clear_product(db, p->id, err);
	if (!rc) {
		*out = catalog_product_json(p, true);
		if (!*out || json_object_set_new(*out, "asset_id", json_string(a->id)) ||
		    (linked && json_object_set_new(*out, "semantic_model_data_product_id", json_string(linked)))) {
			json_decref(*out);
			*out = NULL;
			rc = pb_err(err, PB_ENOMEM, "out of memory");
		}
	}
	free(linked);
	catalog_product_free(p);
	asset_free(a);
	return rc;
}

int asset_products_refresh(pb_db *db, const char *org_id, char *err)
{
	static const char prefix[] = "powerbi-semantic_model-";
	cat_product *v = NULL;
	size_t n = 0;
	int rc = catalog_product_list(db, org_id, &v, &n, err);
	for (size_t i = 0; !rc && i < n; i++) {
		pb_asset *a = NULL;
		cat_product *cur = NULL, *p = NULL;
		char *text = NULL;
		bool created;
		if (!v[i].type || strcmp(v[i].type, TYPE_MODEL) || !v[i].contract_id ||
		    strncmp(v[i].contract_id, prefix, sizeof prefix - 1))
			continue;
		char sub[PB_ERR_MAX];
		/* a model that is gone or lost its schema keeps its last contract */
		if (assets_get_by_powerbi_id(db, org_id, "semantic_model", v[i].contract_id + sizeof prefix - 1, &a, sub) ||
		    strcmp(a->state, "active") || model_contract(a, &text, sub)) {
			asset_free(a);
			continue;
		}
		rc = catalog_product_get(db, org_id, v[i].id, true, &cur, err);
		if (!rc && (!cur->contract_text || strcmp(cur->contract_text, text))) {
			/* the schema the product recorded drifts from the model's (core/flow/drift.h) */
			if (cur->contract_text && drift_note_product_schema(db, org_id, cur->id, cur->contract_text, text, sub))
				log_event("warn", NULL, "data product %s: its drift was not recorded: %s", cur->id, sub);
			rc = import_text(db, org_id, text, TYPE_MODEL, &p, &created, err);
		}
		catalog_product_free(cur);
		catalog_product_free(p);
		free(text);
		asset_free(a);
	}
	catalog_products_free(v, n);
	return rc;
}

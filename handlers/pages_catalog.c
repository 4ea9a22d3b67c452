/* The catalog's pages: / (the organization's data products, searchable with ?q=),
 * /data-products/new (Add Data Product: paste or upload a contract) and
 * /data-products/{id} (ports, servers, schema, published models, Open in ▸ Power BI Web). */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/lang/contract.h"
#include "core/lang/names.h"
#include "core/store/agreements.h"
#include "core/store/catalog.h"
#include "core/store/identity.h"
#include "core/flow/model_update.h"
#include "core/store/published_models.h"
#include "core/lang/sources.h"
#include "handlers/handlers.h"
#include "runtime/json_body.h"
#include "runtime/util.h"

#define SEARCH_MAX_BYTES 200

/* Whether the search key occurs in the key of text (Power BI's comparison: Unicode NFC and
 * case folding, core/lang/names.h), so "CAFÉ" finds "Café". */
static int key_contains(const char *text, const char *key, bool *found)
{
	char *k;
	*found = false;
	if (!text)
		return PB_OK;
	if (!(k = pbname_key(text, strlen(text), NULL)))
		return PB_ENOMEM;
	*found = strstr(k, key) != NULL;
	free(k);
	return PB_OK;
}

int pages_home(struct req *r)
{
	cat_product *v = NULL;
	size_t n = 0;
	char *qkey = NULL;
	json_t *list = NULL;
	const char *q = req_query(r, "q");
	int rc = PB_OK;
	if (q && strlen(q) > SEARCH_MAX_BYTES) {
		rc = req_fail(r, PB_EINVAL, "bad_request", "search text longer than %d bytes", SEARCH_MAX_BYTES);
		goto out;
	}
	if (q && *q && !(qkey = pbname_key(q, strlen(q), NULL))) {
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = catalog_product_list(r->db, r->who.org_id, &v, &n, r->err)))
		goto out;
	if (!(list = json_array())) {
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		bool in_name = true, in_id = false;
		if (qkey && (key_contains(v[i].name, qkey, &in_name) || key_contains(v[i].contract_id, qkey, &in_id))) {
			rc = pb_err(r->err, PB_ENOMEM, "out of memory");
			break;
		}
		if ((in_name || in_id) && json_array_append_new(list, catalog_product_json(&v[i], false)))
			rc = pb_err(r->err, PB_ENOMEM, "out of memory");
	}
	if (!rc) {
		rc = pages_reply(r, "home", json_pack("{s:O, s:s?, s:i}", "products", list, "q", q && *q ? q : NULL,
						      "total", (json_int_t)n), 200);
	}
out:
	json_decref(list);
	free(qkey);
	catalog_products_free(v, n);
	return rc;
}

/* Each port of the product's JSON gets its published models and, for a server type Power BI
 * can publish from, the link to its Power BI page (handlers of /output-ports/{id}/power-bi). */
static int add_port_details(struct req *r, json_t *product)
{
	json_t *ports = json_object_get(product, "output_ports"), *port, *models = NULL;
	size_t i;
	int rc = PB_OK;
	json_array_foreach(ports, i, port) {
		const char *id = json_string_value(json_object_get(port, "id"));
		const char *type = json_string_value(json_object_get(port, "type"));
		char url[PB_ID_BUF + 32];
		if ((rc = published_models_list_json(r->db, r->who.org_id, id, &models, r->err)))
			return rc;
		rc = json_object_set(port, "models", json_object_get(models, "models")) ? PB_ENOMEM : PB_OK;
		json_decref(models);
		if (!rc && type && source_supported(r->cfg, type) &&
		    (xsnprintf(url, sizeof url, "/output-ports/%s/power-bi", id) ||
		     json_object_set_new(port, "power_bi_url", json_string(url))))
			rc = PB_ENOMEM;
		if (rc)
			return pb_err(r->err, rc, "out of memory");
	}
	return PB_OK;
}

/* --- the product page's contract ------------------------------------------------------
 *
 * The page shows the stored contract parsed (contract_to_json's shape), and parsing its YAML
 * was an eighth of the page's work. The same text always parses to the same tree, so the tree
 * is kept per process under the whole text it came from, compared byte for byte at each use:
 * an edited contract is other text and is parsed again, so a page never shows a tree its
 * stored text would not give now. Kept trees are shared read-only (a view holds a reference
 * while the page renders). */
#define KEPT_CONTRACTS 8
#define KEPT_CONTRACT_MAX_BYTES (256u * 1024)   /* larger texts are parsed at every use */

static struct kept_contract {
	char *text;
	size_t len;
	json_t *tree;
} kept[KEPT_CONTRACTS];
static size_t kept_next;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

/* Keeps tree (a new reference taken) under a copy of text, in place of the oldest one. */
static void keep_contract(const char *text, size_t len, json_t *tree)
{
	char *copy = len <= KEPT_CONTRACT_MAX_BYTES ? malloc(len + 1) : NULL;
	if (!copy)
		return;   /* not kept: parsed again next time */
	memcpy(copy, text, len + 1);
	pthread_mutex_lock(&kept_lock);
	struct kept_contract *e = &kept[kept_next];
	kept_next = (kept_next + 1) % KEPT_CONTRACTS;
	free(e->text);
	json_decref(e->tree);
	e->text = copy;
	e->len = len;
	e->tree = json_incref(tree);
	pthread_mutex_unlock(&kept_lock);
}

/* The stored contract text as contract_to_json's tree: *tree a reference to a tree nobody
 * changes (json_decref it), or an rc with why: the parser's message, PB_ENOMEM. */
static int stored_contract_json(const char *text, json_t **tree, char *why)
{
	size_t len = strlen(text);
	pb_contract *c = NULL;
	*tree = NULL;
	pthread_mutex_lock(&kept_lock);
	for (size_t i = 0; i < KEPT_CONTRACTS && !*tree; i++)
		if (kept[i].tree && kept[i].len == len && !memcmp(kept[i].text, text, len))
			*tree = json_incref(kept[i].tree);
	pthread_mutex_unlock(&kept_lock);
	if (*tree)
		return PB_OK;
	int rc = contract_parse(text, len, "stored contract", &c, why);
	if (!rc && !(*tree = contract_to_json(c)))
		rc = pb_err(why, PB_ENOMEM, "out of memory");
	contract_free(c);
	if (!rc)
		keep_contract(text, len, *tree);
	return rc;
}

/* Everything this page shows moves the organization's catalog version when it is written
 * (sql/0018, 0019), so the page this process rendered is given again while the version the
 * caller's identity was read with is the same (runtime/page_render.h kept pages). */
int pages_product(struct req *r)
{
	cat_product *p = NULL;
	json_t *product = NULL, *view = NULL, *consumes = NULL, *contract = NULL;
	char owner[PB_NAME_FIELD_MAX + 1] = "", why[PB_ERR_MAX];
	if (page_kept_reply(r))
		return PB_OK;
	int rc = catalog_product_get(r->db, r->who.org_id, req_capture(r, "id"), true, &p, r->err);
	if (rc)
		goto out;
	if (!(product = catalog_product_json(p, false)) || !(view = json_object())) {
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = add_port_details(r, product)) ||
	    (rc = agreements_consumed_json(r->db, r->who.org_id, p->id, &consumes, r->err)))
		goto out;
	/* a product whose owner was deleted shows none */
	if (p->owner_user_id[0] && identity_user_name(r->db, r->who.org_id, p->owner_user_id, owner, why))
		owner[0] = '\0';
	/* The stored text was accepted at import; a parser that changed since shows why, not a 500. */
	if ((rc = stored_contract_json(p->contract_text, &contract, why)) == PB_ENOMEM) {
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	if (json_object_set_new(view, "product", product) ||
	    (owner[0] && json_object_set_new(view, "owner", json_string(owner))) ||
	    json_object_set_new(view, "consumes", consumes) ||
	    (rc ? json_object_set_new(view, "contract_error", json_string(why))
		: json_object_set_new(view, "contract", contract))) {
		product = consumes = contract = NULL;
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	product = consumes = contract = NULL;   /* the view holds them */
	/* the lineage picture (handlers/pages_assets.c pages_lineage_svg) */
	char picture[PB_ID_BUF + 32];
	if (xsnprintf(picture, sizeof picture, "/lineage.svg?node=%s", p->id) ||
	    json_object_set_new(view, "lineage_svg", json_string(picture))) {
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	rc = page_reply_keep(r, "product", view, 200, pages_chrome);
	view = NULL;
out:
	json_decref(view);
	json_decref(product);
	json_decref(consumes);
	json_decref(contract);
	catalog_product_free(p);
	return rc;
}

/* The Add Data Product page, with the form's earlier input and what was wrong with it. */
static int reply_form(struct req *r, int status, const char *text, const char *filename, const char *message)
{
	return pages_reply(r, "product_new", json_pack("{s:{s:s?, s:s?}, s:s?}", "form", "contract", text, "filename",
						       filename, "error", message), status);
}

int pages_product_new(struct req *r)
{
	return reply_form(r, 200, NULL, NULL, NULL);
}

/* The pasted text with the CR LF line breaks browsers send from a textarea made LF. New. */
static char *pasted_text(const page_field *f)
{
	char *out = malloc(f->len + 1);
	size_t n = 0;
	for (size_t i = 0; out && i < f->len; i++)
		if (!(f->value[i] == '\r' && i + 1 < f->len && f->value[i + 1] == '\n'))
			out[n++] = f->value[i];
	if (out)
		out[n] = '\0';
	return out;
}

int pages_product_create(struct req *r)
{
	const page_field *file = page_form_get(&r->form, "contract_file");
	const page_field *paste = page_form_get(&r->form, "contract");
	char *text = NULL;
	const char *body, *source, *shown = NULL;
	char msg[PB_ERR_MAX], path[PB_ID_BUF + 32];
	pb_contract *c = NULL;
	cat_product *p = NULL;
	json_t *doc = NULL;
	bool created = false;
	size_t len;
	int rc;
	if (paste && !(text = pasted_text(paste))) {
		rc = pb_err(r->err, PB_ENOMEM, "out of memory");
		goto out;
	}
	/* a chosen file wins over the text box; the text box is shown again either way */
	if (file && file->len) {
		body = file->value;
		len = file->len;
		source = file->filename && file->filename[0] ? file->filename : "uploaded file";
	} else if (text && !str_blank(text, strlen(text))) {
		body = shown = text;
		len = strlen(text);
		source = "pasted contract";
	} else {
		rc = reply_form(r, 400, text, NULL, "Paste a contract into the text box or choose a contract file.");
		goto out;
	}
	if (!utf8_valid(body, len) || strlen(body) != len) {
		rc = reply_form(r, 400, shown, NULL, "The contract is not UTF-8 text.");
		goto out;
	}
	/* JSON is read as JSON (YAML would accept more), with the JSON parser's line and column */
	size_t lead = strspn(body, " \t\r\n");
	if (body[lead] == '{' && json_body_parse(body, len, PB_CONTRACT_MAX_DEPTH, &doc, msg)) {
		rc = reply_form(r, 400, shown, NULL, msg);
		goto out;
	}
	rc = contract_parse(body, len, source, &c, msg);
	if (rc == PB_EINVAL || rc == PB_ELIMIT) {
		rc = reply_form(r, 400, shown, NULL, msg);
		goto out;
	}
	if (rc) {
		rc = pb_err(r->err, rc, "%s", msg);
		goto out;
	}
	cat_actor by = { .user_id = r->who.user_id, .org_owner = r->who.role == PB_ROLE_OWNER };
	pb_failure why;
	pb_failure_clear(&why);
	rc = catalog_import_by(r->db, r->who.org_id, &by, c, body, len, &p, &created, &why);
	/* refused (not the owner: 403) or not importable (400): said on the form */
	if (rc == PB_EFORBIDDEN || rc == PB_EINVAL || rc == PB_ELIMIT) {
		rc = reply_form(r, pb_rc_status(rc), shown, NULL, why.message);
		goto out;
	}
	if (rc) {
		r->fail = why;
		goto out;
	}
	model_update_after_import(r->db, r->cfg, r->who.org_id, p->id, created);
	/* the new (or updated) product's page; a reload there does not post again */
	rc = xsnprintf(path, sizeof path, "/data-products/%s", p->id) ? pb_err(r->err, PB_EINTERNAL, "id too long")
								      : page_redirect(r, path);
out:
	json_decref(doc);
	catalog_product_free(p);
	contract_free(c);
	free(text);
	return rc;
}

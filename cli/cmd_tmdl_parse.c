/* `pbiport tmdl-parse PATH [--json]`: parse a TMDL folder or file and print what was read.
 * Default output is a readable summary; --json prints the whole model (core/lang/tmdl.h).
 * Exit 0 ok, 2 bad input (FILE:LINE: message on stderr), 1 other failures. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/lang/tmdl.h"
#include "runtime/util.h"

/* Names the way TMDL writes them: bare when plain, else 'quoted' with '' for '. */
static void print_name(const char *name)
{
	bool plain = (name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z') || name[0] == '_';
	for (const char *p = name; *p && plain; p++)
		plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
	if (plain) {
		fputs(name, stdout);
		return;
	}
	putchar('\'');
	for (const char *p = name; *p; p++) {
		if (*p == '\'')
			putchar('\'');
		putchar(*p);
	}
	putchar('\'');
}

static void print_summary(const tmdl_model *m)
{
	if (m->name) {
		printf("model ");
		print_name(m->name);
	} else {
		printf("(no model declaration)");
	}
	if (m->culture)
		printf(" (culture %s)", m->culture);
	printf(": %zu tables, %zu relationships, %zu expressions, %zu annotations, %zu files\n",
	       m->n_tables, m->n_relationships, m->n_expressions, m->n_annotations, m->n_documents);
	for (size_t i = 0; i < m->n_tables; i++) {
		const tmdl_table *t = &m->tables[i];
		printf("table ");
		print_name(t->name);
		printf(": %zu columns, %zu measures, %zu partitions%s%s\n", t->n_columns, t->n_measures,
		       t->n_partitions, t->is_hidden ? ", hidden" : "",
		       t->is_calculation_group ? ", calculation group" : "");
		for (size_t k = 0; k < t->n_columns; k++) {
			const tmdl_column *c = &t->columns[k];
			printf("\tcolumn ");
			print_name(c->name);
			printf(": %s%s%s\n", c->data_type ? c->data_type : "(no dataType)",
			       c->expression ? ", calculated" : "", c->is_hidden ? ", hidden" : "");
		}
		for (size_t k = 0; k < t->n_partitions; k++) {
			const tmdl_partition *p = &t->partitions[k];
			printf("\tpartition ");
			print_name(p->name);
			printf(": %s%s%s\n", p->source_type ? p->source_type : "(no source type)",
			       p->mode ? ", " : "", p->mode ? p->mode : "");
		}
	}
	for (size_t i = 0; i < m->n_relationships; i++) {
		const tmdl_relationship *r = &m->relationships[i];
		printf("relationship ");
		print_name(r->from_table);
		putchar('.');
		print_name(r->from_column);
		printf(" -> ");
		print_name(r->to_table);
		putchar('.');
		print_name(r->to_column);
		printf("%s\n", r->is_active ? "" : " (inactive)");
	}
}

int cmd_tmdl_parse(int argc, char **argv)
{
	const char *path = NULL;
	bool as_json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			as_json = true;
		else if (argv[i][0] == '-' || path)
			path = NULL, argc = -1;
		else
			path = argv[i];
	}
	if (argc < 0 || !path) {
		fprintf(stderr, "usage: pbiport tmdl-parse PATH [--json]\n");
		return 2;
	}
	char err[PB_ERR_MAX];
	tmdl_model *m = NULL;
	int rc = tmdl_parse_path(path, &m, err);
	if (rc) {
		fprintf(stderr, "%s\n", err);
		return (rc == PB_EINVAL || rc == PB_ENOTFOUND || rc == PB_ELIMIT) ? 2 : 1;
	}
	int status = 0;
	if (as_json) {
		json_t *j = tmdl_model_to_json(m);
		if (!j || json_dumpf(j, stdout, JSON_INDENT(2)) || putchar('\n') == EOF) {
			fprintf(stderr, "pbiport tmdl-parse: cannot write JSON\n");
			status = 1;
		}
		json_decref(j);
	} else {
		print_summary(m);
	}
	if (fflush(stdout)) {
		fprintf(stderr, "pbiport tmdl-parse: write error\n");
		status = 1;
	}
	tmdl_model_free(m);
	return status;
}

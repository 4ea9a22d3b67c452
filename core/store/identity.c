#include "core/store/identity.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/util.h"

static int check_name(const char *kind, const char *name, char *err)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0)
		return pb_err(err, PB_EINVAL, "%s name is empty", kind);
	if (n > PB_NAME_FIELD_MAX)
		return pb_err(err, PB_EINVAL, "%s name is longer than %d bytes", kind, PB_NAME_FIELD_MAX);
	if (!utf8_valid(name, n))
		return pb_err(err, PB_EINVAL, "%s name is not valid UTF-8", kind);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return pb_err(err, PB_EINVAL, "%s name contains a control character", kind);
	return PB_OK;
}

/* The id in the first column of the row of query sql (n text parameters args); PB_ENOTFOUND
 * when there is none. */
static int find_id_of(pb_db *db, const char *sql, const char *const *args, int n, char id[PB_ID_BUF], char *err)
{
	db_stmt *st = NULL;
	int rc = db_prepare_texts(db, sql, args, n, &st, err);
	if (!rc) {
		int r = db_row(db, st, err);
		if (r == 1)
			rc = xsnprintf(id, PB_ID_BUF, "%s", db_col_text(st, 0)) ? PB_EINTERNAL : PB_OK;
		else
			rc = r < 0 ? r : PB_ENOTFOUND;
	}
	db_done(st);
	return rc;
}

/* The id of the row named `name` via a one-text-parameter query returning the id. */
static int find_id(pb_db *db, const char *sql, const char *name, char id[PB_ID_BUF], char *err)
{
	return find_id_of(db, sql, &name, 1, id, err);
}

/* The id of the row of sql (as find_id) named name; PB_ENOTFOUND says "no <what> named 'name'". */
static int find_named(pb_db *db, const char *sql, const char *what, const char *name, char id[PB_ID_BUF], char *err)
{
	int rc = find_id(db, sql, name, id, err);
	return rc == PB_ENOTFOUND ? pb_err(err, PB_ENOTFOUND, "no %s named '%.128s'", what, name) : rc;
}

/* PB_OK when no row of sql (as find_id) is named name; else PB_ECONFLICT with the message of
 * fmt (what the caller tells about the name taken), or the lookup's failure. */
static int name_free(pb_db *db, const char *sql, const char *name, char *err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int name_free(pb_db *db, const char *sql, const char *name, char *err, const char *fmt, ...)
{
	char existing[PB_ID_BUF], msg[PB_ERR_MAX];
	int rc = find_id(db, sql, name, existing, err);
	if (rc != PB_OK)
		return rc == PB_ENOTFOUND ? PB_OK : rc;
	va_list ap;
	va_start(ap, fmt);
	pb_vformat(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return pb_err(err, PB_ECONFLICT, "%s", msg);
}

int identity_org_create(pb_db *db, const char *name, char id[PB_ID_BUF], char *err)
{
	char now[PB_TIME_BUF];
	int rc = check_name("organization", name, err);
	if (rc || (rc = pb_new_id(id, err)) || (rc = db_begin(db, err)))
		return rc;
	if ((rc = name_free(db, "SELECT id FROM organizations WHERE name = ?", name, err,
			    "organization '%s' already exists", name)))
		goto out;
	pb_now(now);
	const char *row[] = { id, name, now };
	rc = db_exec_texts(db, "INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)", row, 3, err);
out:
	return db_end(db, rc, err);
}

int identity_teams(pb_db *db, const char *org_id, const char *user_id, pb_team **out, size_t *n, char *err)
{
	db_stmt *st = NULL;
	pb_team *v = NULL;
	size_t count = 0;
	int rc, row;
	*out = NULL;
	*n = 0;
	const char *args[] = { org_id, user_id };
	rc = db_prepare_list(db,
			     user_id ? "SELECT t.id, t.name FROM teams t JOIN team_members m ON m.team_id = t.id "
				       "WHERE t.org_id = ? AND m.user_id = ? ORDER BY t.name LIMIT ?"
				     : "SELECT t.id, t.name FROM teams t WHERE t.org_id = ? ORDER BY t.name LIMIT ?",
			     args, user_id ? 2 : 1, PB_LIST_MAX_ITEMS, &st, err);
	if (rc)
		goto out;
	size_t cap = 0;
	while ((row = db_row(db, st, err)) == 1) {
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			pb_team *nv = realloc(v, ncap * sizeof *v);
			if (!nv) {
				rc = pb_err(err, PB_ENOMEM, "out of memory");
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		xsnprintf(v[count].id, sizeof v[count].id, "%s", db_col_text(st, 0));
		xsnprintf(v[count].name, sizeof v[count].name, "%s", db_col_text(st, 1));
		count++;
	}
	if (row < 0) {
		rc = row;
		goto out;
	}
	if (count) {
		*out = v;
		*n = count;
		v = NULL;
	}
out:
	free(v);
	db_done(st);
	return rc;
}

static int add_to_team(pb_db *db, const char *org_id, const char *user_id, const char *team,
		       const char *now, char *err)
{
	char team_id[PB_ID_BUF];
	const char *which[] = { org_id, team }, *team_row[] = { team_id, org_id, team, now },
		   *member[] = { team_id, user_id };
	int rc = check_name("team", team, err);
	if (rc)
		return rc;
	rc = find_id_of(db, "SELECT id FROM teams WHERE org_id = ? AND name = ?", which, 2, team_id, err);
	if (rc == PB_ENOTFOUND && !(rc = pb_new_id(team_id, err)))   /* a new team */
		rc = db_exec_texts(db, "INSERT INTO teams (id, org_id, name, created_at) VALUES (?, ?, ?, ?)", team_row, 4,
				   err);
	if (!rc)
		rc = db_exec_texts(db, "INSERT INTO team_members (team_id, user_id) VALUES (?, ?) "
				   "ON CONFLICT (team_id, user_id) DO NOTHING", member, 2, err);
	return rc;
}

int identity_user_add(pb_db *db, const char *name, const char *org_name, pb_role role,
		      const char *const *teams, size_t nteams, char id[PB_ID_BUF], char *err)
{
	char now[PB_TIME_BUF], org_id[PB_ID_BUF];
	int rc = check_name("user", name, err);
	if (rc)
		return rc;
	if (role != PB_ROLE_OWNER && role != PB_ROLE_MEMBER)
		return pb_err(err, PB_EINVAL, "role must be owner or member");
	for (size_t i = 0; i < nteams; i++)
		if ((rc = check_name("team", teams[i], err)))
			return rc;
	if ((rc = pb_new_id(id, err)) || (rc = db_begin(db, err)))
		return rc;
	if ((rc = find_named(db, "SELECT id FROM organizations WHERE name = ?", "organization", org_name, org_id, err)) ||
	    (rc = name_free(db, "SELECT id FROM users WHERE name = ?", name, err, "user '%s' already exists", name)))
		goto out;
	pb_now(now);
	const char *row[] = { id, org_id, name, auth_role_name(role), now };
	rc = db_exec_texts(db, "INSERT INTO users (id, org_id, name, role, created_at) VALUES (?, ?, ?, ?, ?)", row, 5,
			   err);
	for (size_t i = 0; !rc && i < nteams; i++)
		rc = add_to_team(db, org_id, id, teams[i], now, err);
out:
	return db_end(db, rc, err);
}

int identity_token_create(pb_db *db, const char *user_name, char token[PB_TOKEN_BUF], char *err)
{
	char user_id[PB_ID_BUF], token_id[PB_ID_BUF], hash[PB_TOKEN_HASH_HEX], now[PB_TIME_BUF];
	int rc = db_begin(db, err);
	if (rc)
		return rc;
	rc = find_named(db, "SELECT id FROM users WHERE name = ?", "user", user_name, user_id, err);
	if (rc || (rc = auth_token_new(token, token_id, hash, err)))
		goto out;
	pb_now(now);
	const char *row[] = { token_id, user_id, hash, now };
	rc = db_exec_texts(db, "INSERT INTO api_tokens (id, user_id, token_hash, created_at) VALUES (?, ?, ?, ?)", row, 4,
			   err);
out:
	if ((rc = db_end(db, rc, err)))
		memset(token, 0, PB_TOKEN_BUF);
	return rc;
}

/* Columns 0..3 = user id, org id, name, role. */
static int fill_identity(db_stmt *st, pb_identity *who, char *err)
{
	memset(who, 0, sizeof *who);
	who->catalog_version = -1;
	if (xsnprintf(who->user_id, sizeof who->user_id, "%s", db_col_text(st, 0)) ||
	    xsnprintf(who->org_id, sizeof who->org_id, "%s", db_col_text(st, 1)) ||
	    xsnprintf(who->user_name, sizeof who->user_name, "%s", db_col_text(st, 2)) ||
	    auth_role_parse(db_col_text(st, 3), &who->role))
		return pb_err(err, PB_EINTERNAL, "user row is malformed");
	return PB_OK;
}

/* A user (columns 0..3 as fill_identity) and the organization's catalog version (read with the
 * user, one snapshot: answers and pages the process keeps are given again only at the version
 * they were built at), by the condition that follows, of n text parameters. */
#define USER_BY                                                                                      \
	"SELECT u.id, u.org_id, u.name, u.role, o.catalog_version FROM users u "                     \
	"JOIN organizations o ON o.id = u.org_id WHERE "

static int user_by(pb_db *db, const char *sql, const char *const *args, int n, pb_identity *who, char *err)
{
	db_stmt *st;
	int rc = db_prepare(db, sql, &st, err);
	for (int i = 0; !rc && i < n; i++)
		rc = db_bind_text(st, i + 1, args[i], err);
	if (!rc) {
		int r = db_row(db, st, err);
		rc = r == 1 ? fill_identity(st, who, err) : r < 0 ? r : PB_ENOTFOUND;
		if (!rc)
			who->catalog_version = db_col_int64(st, 4);
	}
	db_done(st);
	return rc;
}

#define KEPT_KEY_BUF (2 + PB_NAME_FIELD_MAX + 1)

/* What this thread read of the identities it met last, each with the database's mark taken
 * before it was read: given again, without a statement, while the mark is the same (nothing was
 * committed since: not a revoked token, a changed role or a moved catalog version). A request's
 * identity is read again as soon as anything was written, by anyone. */
struct kept_identity {
	db_mark mark;
	char key[KEPT_KEY_BUF];                /* "t:" token id, "u:" user name */
	pb_identity who;
	char hash_hex[PB_TOKEN_HASH_HEX];      /* a token's stored hash */
};
static _Thread_local struct kept_identity kept[PB_KEPT_IDENTITIES];
static _Thread_local unsigned kept_next;

/* Takes the database's mark into *now and names the lookup in key (kind ':' text; "" when too
 * long to keep). Answers the identity kept for it at that mark, which then stands for the read's
 * first statement, or NULL. */
static const struct kept_identity *kept_find(pb_db *db, char kind, const char *text, db_mark *now,
					     char key[KEPT_KEY_BUF])
{
	size_t n = strlen(text);
	db_mark_take(db, now);
	key[0] = '\0';
	if (n + 3 <= KEPT_KEY_BUF) {
		key[0] = kind;
		key[1] = ':';
		memcpy(key + 2, text, n + 1);
	}
	for (size_t i = 0; key[0] && i < PB_KEPT_IDENTITIES; i++)
		if (db_mark_same(&kept[i].mark, now) && !strcmp(kept[i].key, key)) {
			db_read_first_skipped(db);
			return &kept[i];
		}
	return NULL;
}

/* Keeps what was read for key after taking mark now (kept_find). */
static void kept_put(const db_mark *now, const char *key, const pb_identity *who, const char *hash_hex)
{
	struct kept_identity *k = NULL;
	if (!now->valid || !key[0])
		return;
	for (size_t i = 0; i < PB_KEPT_IDENTITIES && !k; i++)
		if (!strcmp(kept[i].key, key))
			k = &kept[i];
	if (!k)
		k = &kept[kept_next++ % PB_KEPT_IDENTITIES];
	k->mark = *now;
	memcpy(k->key, key, KEPT_KEY_BUF);
	k->who = *who;
	memcpy(k->hash_hex, hash_hex, PB_TOKEN_HASH_HEX);
}

int identity_user_by_name(pb_db *db, const char *name, pb_identity *who, char *err)
{
	char key[KEPT_KEY_BUF], no_hash[PB_TOKEN_HASH_HEX] = "";
	db_mark now;
	const struct kept_identity *k = kept_find(db, 'u', name, &now, key);
	if (k) {
		*who = k->who;
		return PB_OK;
	}
	int rc = user_by(db, USER_BY "u.name = ?", &name, 1, who, err);
	if (!rc)
		kept_put(&now, key, who, no_hash);
	return rc;
}

int identity_token_by_id(pb_db *db, const char *token_id, pb_identity *who,
			 char hash_hex[PB_TOKEN_HASH_HEX], char *err)
{
	char key[KEPT_KEY_BUF];
	db_mark now;
	const struct kept_identity *k = kept_find(db, 't', token_id, &now, key);
	if (k) {
		*who = k->who;
		memcpy(hash_hex, k->hash_hex, PB_TOKEN_HASH_HEX);
		return PB_OK;
	}
	db_stmt *st;
	/* the organization's catalog version in the same statement: one snapshot with the token */
	int rc = db_prepare(db, "SELECT u.id, u.org_id, u.name, u.role, t.token_hash, o.catalog_version FROM api_tokens t "
			    "JOIN users u ON u.id = t.user_id JOIN organizations o ON o.id = u.org_id "
			    "WHERE t.id = ? AND t.revoked_at IS NULL",
			    &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, token_id, err))) {
		int r = db_row(db, st, err);
		rc = r == 1 ? fill_identity(st, who, err) : r < 0 ? r : PB_ENOTFOUND;
		if (!rc && xsnprintf(hash_hex, PB_TOKEN_HASH_HEX, "%s", db_col_text(st, 4)))
			rc = pb_err(err, PB_EINTERNAL, "token row is malformed");
		if (!rc)
			who->catalog_version = db_col_int64(st, 5);
	}
	db_done(st);
	if (!rc)
		kept_put(&now, key, who, hash_hex);
	return rc;
}

/* The one name column sql (two text parameters a and b; b may be NULL) selects, into name;
 * PB_ENOTFOUND naming `what` id when there is no row. */
static int name_of(pb_db *db, const char *sql, const char *a, const char *b, const char *what, const char *id,
		   char name[PB_NAME_FIELD_MAX + 1], char *err)
{
	db_stmt *st;
	name[0] = '\0';
	int rc = db_prepare(db, sql, &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, a, err)) && !(b && (rc = db_bind_text(st, 2, b, err)))) {
		int r = db_row(db, st, err);
		if (r == 1)
			xsnprintf(name, PB_NAME_FIELD_MAX + 1, "%s", db_col_text(st, 0));
		rc = r < 0 ? r : r == 0 ? pb_err(err, PB_ENOTFOUND, "no %s %.64s", what, id) : PB_OK;
	}
	db_done(st);
	return rc;
}

int identity_user_name(pb_db *db, const char *org_id, const char *user_id, char name[PB_NAME_FIELD_MAX + 1],
		       char *err)
{
	return name_of(db, "SELECT name FROM users WHERE org_id = ? AND id = ?", org_id, user_id, "user", user_id, name,
		       err);
}

int identity_org_name(pb_db *db, const char *org_id, char name[PB_NAME_FIELD_MAX + 1], char *err)
{
	return name_of(db, "SELECT name FROM organizations WHERE id = ?", org_id, NULL, "organization", org_id, name,
		       err);
}

/* ---- signing in with Microsoft ---- */

int identity_email_normalize(const char *in, char out[PB_EMAIL_MAX + 1], char *err)
{
	out[0] = '\0';
	if (!in)
		return pb_err(err, PB_EINVAL, "no e-mail address");
	while (*in == ' ' || *in == '\t')
		in++;
	size_t n = strlen(in);
	while (n && (in[n - 1] == ' ' || in[n - 1] == '\t'))
		n--;
	if (n < 3 || n > PB_EMAIL_MAX)
		return pb_err(err, PB_EINVAL, "an e-mail address has 3 to %d characters", PB_EMAIL_MAX);
	const char *at = memchr(in, '@', n);
	if (!at || at == in || at == in + n - 1 || memchr(at + 1, '@', (size_t)(in + n - at - 1)))
		return pb_err(err, PB_EINVAL, "'%.*s' is not an e-mail address (name@domain)", (int)(n > 80 ? 80 : n), in);
	if (!utf8_valid(in, n))
		return pb_err(err, PB_EINVAL, "the e-mail address is not valid UTF-8");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c <= 0x20 || c == 0x7f)
			return pb_err(err, PB_EINVAL, "an e-mail address has no spaces or control characters");
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[n] = '\0';
	return PB_OK;
}

int identity_user_set_email(pb_db *db, const char *user_name, const char *email, char *err)
{
	char norm[PB_EMAIL_MAX + 1], user_id[PB_ID_BUF];
	bool taken = false;
	int rc = email ? identity_email_normalize(email, norm, err) : PB_OK;
	if (rc || (rc = db_begin(db, err)))
		return rc;
	rc = find_named(db, "SELECT id FROM users WHERE name = ?", "user", user_name, user_id, err);
	const char *taken_args[] = { email ? norm : "", user_id };
	if (!rc && email)
		rc = db_has_row(db, "SELECT 1 FROM users WHERE email = ? AND id <> ?", taken_args, 2, &taken, err);
	if (!rc && taken)
		rc = pb_err(err, PB_EINVAL, "another user has the e-mail address %s", norm);
	const char *args[] = { email ? norm : NULL, user_id };
	if (!rc)
		rc = db_exec_texts(db, "UPDATE users SET email = ? WHERE id = ?", args, 2, err);
	return db_end(db, rc, err);
}

int identity_user_by_id(pb_db *db, const char *user_id, pb_identity *who, char *err)
{
	const char *args[] = { user_id };
	return user_by(db, USER_BY "u.id = ?", args, 1, who, err);
}

int identity_user_by_entra(pb_db *db, const char *tenant_id, const char *object_id, pb_identity *who, char *err)
{
	const char *args[] = { tenant_id, object_id };
	return user_by(db, USER_BY "u.entra_tenant_id = ? AND u.entra_object_id = ?",
		       args, 2, who, err);
}

int identity_user_by_email(pb_db *db, const char *const *addrs, size_t n, pb_identity *who,
			   char pinned_tenant[PB_ENTRA_ID_BUF], char *err)
{
	db_stmt *st = NULL;
	size_t found = 0;
	int rc = PB_OK, r = 0;
	pinned_tenant[0] = '\0';
	memset(who, 0, sizeof *who);
	who->catalog_version = -1;
	for (size_t i = 0; i < n && !rc; i++) {
		if (!addrs[i] || !*addrs[i])
			continue;
		if ((rc = db_prepare(db, "SELECT id, org_id, name, role, entra_tenant_id FROM users "
				     "WHERE email = ?1 OR lower(name) = ?1", &st, err)) ||
		    (rc = db_bind_text(st, 1, addrs[i], err)))
			break;
		while ((r = db_row(db, st, err)) == 1) {
			const char *id = db_col_text(st, 0);
			if (found && !strcmp(who->user_id, id))
				continue;
			if (++found > 1)
				break;
			if ((rc = fill_identity(st, who, err)))
				break;
			xsnprintf(pinned_tenant, PB_ENTRA_ID_BUF, "%s", db_col_text(st, 4));
		}
		db_done(st);
		st = NULL;
		if (r < 0 && !rc)
			rc = r;
	}
	if (!rc && found > 1)
		rc = pb_err(err, PB_ECONFLICT, "the e-mail addresses of this Microsoft account match more than one pbiport "
			    "user: an owner gives each user their own e-mail (pbiport user email)");
	else if (!rc && !found)
		rc = PB_ENOTFOUND;
	if (rc) {
		memset(who, 0, sizeof *who);
		who->catalog_version = -1;
		pinned_tenant[0] = '\0';
	}
	return rc;
}

static int changes(pb_db *db)
{
	return db_changes(db);
}

int identity_user_pin_entra(pb_db *db, const char *user_id, const char *tenant_id, const char *object_id,
			    const char *email, char *err)
{
	bool taken = false;
	int rc = db_begin(db, err);
	if (rc)
		return rc;
	const char *acct[] = { tenant_id, object_id };
	if ((rc = db_has_row(db, "SELECT 1 FROM users WHERE entra_tenant_id = ? AND entra_object_id = ?", acct, 2,
			     &taken, err)))
		goto out;
	if (taken) {
		rc = pb_err(err, PB_ECONFLICT, "this Microsoft account is already linked to another pbiport user");
		goto out;
	}
	const char *pin[] = { tenant_id, object_id, user_id };
	if ((rc = db_exec_texts(db, "UPDATE users SET entra_tenant_id = ?, entra_object_id = ? "
				"WHERE id = ? AND entra_object_id IS NULL", pin, 3, err)))
		goto out;
	if (changes(db) != 1) {
		rc = pb_err(err, PB_ECONFLICT, "this pbiport user is linked to another Microsoft account");
		goto out;
	}
	if (email) {
		const char *mail[] = { email, user_id, email };
		rc = db_exec_texts(db, "UPDATE users SET email = ? WHERE id = ? AND email IS NULL AND "
				   "NOT EXISTS (SELECT 1 FROM users WHERE email = ?)", mail, 3, err);
	}
out:
	return db_end(db, rc, err);
}

int identity_org_by_signup_tenant(pb_db *db, const char *tenant_id, char org_id[PB_ID_BUF], char *err)
{
	return find_id(db, "SELECT id FROM organizations WHERE signup_tenant_id = ?", tenant_id, org_id, err);
}

int identity_user_signup(pb_db *db, const char *org_id, const char *name, const char *email, const char *tenant_id,
			 const char *object_id, pb_identity *who, char *err)
{
	char id[PB_ID_BUF], now[PB_TIME_BUF];
	bool taken = false;
	int rc = check_name("user", name, err);
	if (rc || (rc = pb_new_id(id, err)) || (rc = db_begin(db, err)))
		return rc;
	if ((rc = name_free(db, "SELECT id FROM users WHERE name = ?", name, err,
			    "a pbiport user named '%s' exists already: an owner links it to your account by giving it "
			    "your e-mail (pbiport user email)", name)))
		goto out;
	const char *mail[] = { email ? email : "" };
	if (email && (rc = db_has_row(db, "SELECT 1 FROM users WHERE email = ?", mail, 1, &taken, err)))
		goto out;
	if (taken) {
		rc = pb_err(err, PB_ECONFLICT, "another pbiport user has the e-mail address %s", email);
		goto out;
	}
	pb_now(now);
	const char *row[] = { id, org_id, name, email, tenant_id, object_id, now };
	if ((rc = db_exec_texts(db, "INSERT INTO users (id, org_id, name, role, email, entra_tenant_id, entra_object_id, "
				"created_at) VALUES (?, ?, ?, 'member', ?, ?, ?, ?)", row, 7, err)))
		goto out;
	rc = identity_user_by_id(db, id, who, err);
out:
	return db_end(db, rc, err);
}

int identity_org_signup_get(pb_db *db, const char *org_id, char tenant_id[PB_ENTRA_ID_BUF], char *err)
{
	db_stmt *st;
	tenant_id[0] = '\0';
	int rc = db_prepare(db, "SELECT signup_tenant_id FROM organizations WHERE id = ?", &st, err);
	if (!rc && !(rc = db_bind_text(st, 1, org_id, err))) {
		int r = db_row(db, st, err);
		if (r == 1)
			xsnprintf(tenant_id, PB_ENTRA_ID_BUF, "%s", db_col_text(st, 0));
		rc = r < 0 ? r : r == 0 ? pb_err(err, PB_ENOTFOUND, "no organization %.64s", org_id) : PB_OK;
	}
	db_done(st);
	return rc;
}

int identity_org_signup_set(pb_db *db, const char *org_id, const char *tenant_id, char *err)
{
	char lower[PB_ENTRA_ID_BUF];
	bool taken = false;
	if (tenant_id && !str_is_guid(tenant_id))
		return pb_err(err, PB_EINVAL, "tenant_id must be the Entra tenant's id (a GUID such as "
			      "72f988bf-86f1-41af-91ab-2d7cd011db47), not its domain");
	if (tenant_id) {
		for (size_t i = 0; i < sizeof lower; i++)
			lower[i] = (char)(tenant_id[i] >= 'A' && tenant_id[i] <= 'Z' ? tenant_id[i] + 32 : tenant_id[i]);
	}
	int rc = db_begin(db, err);
	if (rc)
		return rc;
	const char *who_has[] = { tenant_id ? lower : "", org_id };
	if (tenant_id && (rc = db_has_row(db, "SELECT 1 FROM organizations WHERE signup_tenant_id = ? AND id <> ?",
					  who_has, 2, &taken, err)))
		goto out;
	if (taken) {
		rc = pb_err(err, PB_ECONFLICT, "another organization already lets the people of tenant %s sign up", lower);
		goto out;
	}
	const char *args[] = { tenant_id ? lower : NULL, org_id };
	if ((rc = db_exec_texts(db, "UPDATE organizations SET signup_tenant_id = ? WHERE id = ?", args, 2, err)))
		goto out;
	if (changes(db) != 1)
		rc = pb_err(err, PB_ENOTFOUND, "no organization %.64s", org_id);
out:
	return db_end(db, rc, err);
}

#include "msapi/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "msapi/msapi.h"
#include "runtime/util.h"

struct api_code {
	const char *code;
	const char *cause;
	const char *fix;
};

/* Fabric and Power BI error codes (reference §6) with what a user can do about them. */
static const struct api_code api_codes[] = {
	{ "TokenExpired", "the access token has expired", "sign in again" },
	{ "PowerBINotAuthorizedException", "the identity has no role in this workspace, or service principals "
	  "may not use Power BI APIs in this tenant", "add it to the workspace as Viewer (Contributor or "
	  "higher to make changes) and check the tenant setting 'Service principals can use Fabric APIs'" },
	{ "PowerBINotAuthorized", "the identity has no role in this workspace, or service principals may not "
	  "use Power BI APIs in this tenant", "add it to the workspace as Viewer (Contributor or higher to "
	  "make changes) and check the tenant setting 'Service principals can use Fabric APIs'" },
	{ "InsufficientScopes", "the sign-in lacks a permission this call needs",
	  "sign in again and accept every requested permission" },
	{ "InsufficientPrivileges", "the identity's workspace role is too low for this",
	  "ask a workspace admin to make it Contributor or higher" },
	{ "InsufficientWorkspaceRole", "the identity's workspace role is too low for this",
	  "ask a workspace admin to make it Contributor or higher" },
	{ "InsufficientPermissions", "the identity lacks permission on this item",
	  "ask the item's owner or a workspace admin for access" },
	{ "ItemNotFound", "the item does not exist or the identity cannot see it",
	  "check the id and that the identity is a member of the workspace" },
	{ "EntityNotFound", "it does not exist or the identity cannot see it",
	  "check the id and that the identity may use it" },
	{ "PowerBIEntityNotFound", "it does not exist or the identity cannot see it",
	  "check the id and that the identity is a member of the workspace" },
	{ "WorkspaceNotFound", "the workspace does not exist or the identity is not a member",
	  "check the workspace and add the identity to it" },
	{ "ItemDisplayNameAlreadyInUse", "an item with that name already exists in the workspace",
	  "choose another name or update the existing model" },
	{ "DuplicateConnectionName", "a connection with that name already exists",
	  "choose another name or reuse the existing connection" },
	{ "CorruptedPayload", "the service could not read the model definition",
	  "check the generated TMDL with the dry run (GET /api/output-ports/{id}/tmdl)" },
	{ "InvalidConnectionDetails", "the connection parameters do not fit this data source type",
	  "check the server and warehouse (Snowflake) or host and HTTP path (Databricks)" },
	{ "InvalidCredentialDetails", "the credentials are incomplete or of the wrong kind",
	  "check the credential type and its fields" },
	{ "IncorrectCredentials", "the data source rejected the credentials",
	  "check the user name and password, or the key" },
	{ "CreateGatewayConnectionFailed", "the connection could not be created on the gateway",
	  "check the gateway and the data source parameters" },
	{ "WorkspaceItemsLimitExceeded", "the workspace already holds the most items allowed",
	  "delete unused items or choose another workspace" },
	{ "RequestBlocked", "the service is throttling this identity", "wait and try again later" },
	{ "OperationNotSupportedForItem", "this operation is not supported for this item",
	  "check the item type (encrypted sensitivity labels also block it)" },
	{ "DMTS_CanNotFindMatchingDatasourceInGatewayError", "no connection matches the model's data source",
	  "create a connection for the model's server and database, then bind again" },
	/* on-premises data gateways (Power BI REST Gateways; the codes of the gateway pipeline) */
	{ "DM_GWPipeline_Gateway_DataSourceAccessError", "the gateway could not sign in to the data source with these "
	  "credentials", "check the user name and password (or key), and that the gateway's machine reaches the server" },
	{ "DM_GWPipeline_Gateway_InvalidConnectionCredentials", "the gateway could not read the credentials (not "
	  "encrypted with its current key, or incomplete)", "check the credential type and its fields, and try again" },
	{ "InvalidRequest", "the service rejected the request as invalid", "check the values sent" },
	{ "InvalidAuthenticationToken", "the access token is not valid for this service",
	  "sign in again" },
	{ "Authorization_RequestDenied", "the identity may not read this directory object",
	  "grant Application.Read.All or use the app's own credentials" },
	{ "Request_ResourceNotFound", "the application is not known in this tenant",
	  "check the client id and tenant id" },
};

struct entra_code {
	long n;
	const char *subject;
	const char *cause;
	const char *fix;
};

/* AADSTS numbers (reference §1.3). */
static const struct entra_code entra_codes[] = {
	{ 700082, "the refresh token", "expired after 90 days without use", "sign in again" },
	{ 700084, "the refresh token", "past its fixed 24-hour lifetime", "sign in again" },
	{ 70008, "the refresh token", "expired or revoked", "sign in again" },
	{ 70000, "the refresh token", "invalid, expired or already replaced", "sign in again" },
	{ 50173, "the refresh token", "revoked after a password change or reset", "sign in again" },
	{ 54005, "the authorization code", "already redeemed", "start the sign-in again" },
	{ 50148, "the PKCE code verifier", "it does not match the code challenge",
	  "start the sign-in again" },
	{ 501481, "the PKCE code verifier", "it does not match the code challenge",
	  "start the sign-in again" },
	{ 65001, "the token request", "the user or an admin has not consented to the app",
	  "sign in again and accept the consent screen, or ask an admin to grant consent" },
	{ 50076, "the sign-in", "multi-factor authentication is required", "sign in again interactively" },
	{ 50079, "the sign-in", "multi-factor authentication enrolment is required",
	  "sign in again interactively" },
	{ 70011, "the requested scope", "not valid for this app", "check the scopes requested" },
	{ 7000215, "the client secret", "it is wrong", "check the client secret" },
	{ 7000222, "the client secret", "it has expired",
	  "create a new client secret in Entra and save it in place of the old one" },
	{ 700016, "the client id", "the application is not registered or consented in this tenant",
	  "check the client id and tenant id" },
	{ 90002, "the tenant", "it was not found", "check the tenant id" },
	{ 50196, "the token request", "too many identical requests (loop detected)",
	  "wait a minute before trying again" },
};

static void copy_line(char *dst, size_t size, const char *src)
{
	if (!size)
		return;
	dst[0] = '\0';
	if (!src)
		return;
	size_t n = strcspn(src, "\r\n");
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static const char *jstr(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

void msapi_error_parse(int svc, const json_t *body, const char *raw, char *code, size_t codesz,
		       char *msg, size_t msgsz)
{
	copy_line(code, codesz, NULL);
	copy_line(msg, msgsz, NULL);
	if (!json_is_object(body)) {
		copy_line(msg, msgsz, raw);
		return;
	}
	if (svc == MSAPI_ENTRA && jstr(body, "error")) {
		const json_t *codes = json_object_get(body, "error_codes");
		const json_t *first = json_array_get(codes, 0);
		if (json_is_integer(first)) {
			char tmp[64];
			if (!xsnprintf(tmp, sizeof tmp, "AADSTS%lld", (long long)json_integer_value(first)))
				copy_line(code, codesz, tmp);
		} else {
			copy_line(code, codesz, jstr(body, "error"));
		}
		const char *d = jstr(body, "error_description");
		copy_line(msg, msgsz, d ? d : jstr(body, "error"));
		return;
	}
	if (jstr(body, "errorCode")) { /* Fabric */
		copy_line(code, codesz, jstr(body, "errorCode"));
		copy_line(msg, msgsz, jstr(body, "message"));
		const json_t *more = json_array_get(json_object_get(body, "moreDetails"), 0);
		if (jstr(more, "errorCode") && !strcmp(code, "InvalidRequest"))
			copy_line(code, codesz, jstr(more, "errorCode"));
		return;
	}
	const json_t *e = json_object_get(body, "error");
	if (json_is_object(e)) { /* Power BI / Graph */
		const json_t *pbi = json_object_get(e, "pbi.error");
		const char *c = jstr(e, "code");
		if ((!c || !*c) && json_is_object(pbi))
			c = jstr(pbi, "code");
		copy_line(code, codesz, c);
		copy_line(msg, msgsz, jstr(e, "message"));
		/* executeQueries says what failed only in pbi.error.details (DetailsMessage) */
		const json_t *details = json_object_get(pbi, "details");
		for (size_t i = 0; !jstr(e, "message") && i < json_array_size(details); i++)
			if (jstr(json_array_get(details, i), "code") &&
			    !strcmp(jstr(json_array_get(details, i), "code"), "DetailsMessage"))
				copy_line(msg, msgsz, jstr(json_object_get(json_array_get(details, i), "detail"), "value"));
		return;
	}
	copy_line(msg, msgsz, jstr(body, "message")); /* Power BI 429 */
}

int msapi_status_rc(long status)
{
	if (status == 404)
		return PB_ENOTFOUND;
	if (status == 429)
		return PB_ELIMIT;
	if (status >= 500 || status == 0)
		return PB_EIO;
	return PB_EINVAL;
}

int msapi_error_message(int svc, long status, const char *code, const char *ms_message,
			const char *what, char *err)
{
	int rc = msapi_status_rc(status);
	const char *svcname = msapi_svc_name(svc);
	if (!what || !*what)
		what = "complete the request";
	if (!code)
		code = "";
	if (!strncmp(code, "AADSTS", 6)) {
		long n = strtol(code + 6, NULL, 10);
		for (size_t i = 0; i < sizeof entra_codes / sizeof entra_codes[0]; i++) {
			const struct entra_code *e = &entra_codes[i];
			if (e->n == n)
				return pb_err(err, rc, "Entra refused %s (%s, %s): %s", e->subject, code, e->cause, e->fix);
		}
	}
	for (size_t i = 0; i < sizeof api_codes / sizeof api_codes[0]; i++) {
		const struct api_code *a = &api_codes[i];
		if (!strcmp(a->code, code))
			return pb_err(err, rc, "%s refused to %s: %s (%s, HTTP %ld); %s", svcname, what,
				      a->cause, code, status, a->fix);
	}
	/* generic fall-backs by status, keeping Microsoft's own words */
	const char *m = ms_message && *ms_message ? ms_message : NULL;
	char shown[200];
	copy_line(shown, sizeof shown, m);
	if (svc == MSAPI_ENTRA && (!strcmp(code, "invalid_client") || !strcmp(code, "unauthorized_client")))
		return pb_err(err, rc, "Entra refused the app credentials (%s): check the tenant id, client id "
			      "and secret%s%s", code, m ? "; Entra says: " : "", shown);
	if (svc == MSAPI_ENTRA && !strcmp(code, "invalid_grant"))
		return pb_err(err, rc, "Entra refused the grant (invalid_grant): sign in again%s%s",
			      m ? "; Entra says: " : "", shown);
	const char *hint = status == 401 ? "check the credentials and that the identity may use this API" :
			   status == 403 ? "check the identity's workspace role and the tenant settings" :
			   status == 404 ? "check the id and the identity's access" :
			   status == 409 ? "it conflicts with an existing item or a running operation" :
			   status == 429 ? "the service is throttling; try again later" :
			   status >= 500 ? "the service failed; try again later" : "check the values sent";
	if (*code)
		return pb_err(err, rc, "%s refused to %s (%s, HTTP %ld): %s%s%s", svcname, what, code, status, hint,
			      m ? "; it says: " : "", shown);
	return pb_err(err, rc, "%s refused to %s (HTTP %ld): %s%s%s", svcname, what, status, hint,
		      m ? "; it says: " : "", shown);
}

/* Entra's AADSTS numbers for app credentials it refused, and for user grants that are gone. */
static const long entra_bad_credentials[] = { 7000215, 7000222, 700016, 90002, 700027, 7000112 };
/* A grant that is gone, and an authorization code that cannot be redeemed (used already, PKCE
 * mismatch): either way the user signs in again. */
static const long entra_reauthenticate[] = { 700082, 700084, 70008, 70000, 50173, 65001, 50076, 50079, 50078,
					     500341, 53003, 54005, 50148, 501481 };

static bool entra_in(const char *code, const long *list, size_t n)
{
	if (strncmp(code, "AADSTS", 6))
		return false;
	long num = strtol(code + 6, NULL, 10);
	for (size_t i = 0; i < n; i++)
		if (list[i] == num)
			return true;
	return false;
}

msapi_failure msapi_failure_of(int svc, long status, const char *code)
{
	if (!code)
		code = "";
	if (status == 0 || status >= 500)
		return MSAPI_UNAVAILABLE;
	if (status == 429 || !strcmp(code, "RequestBlocked"))
		return MSAPI_RETRY_AFTER;
	if (svc == MSAPI_ENTRA) {
		if (entra_in(code, entra_bad_credentials, sizeof entra_bad_credentials / sizeof entra_bad_credentials[0]) ||
		    !strcmp(code, "invalid_client") || !strcmp(code, "unauthorized_client"))
			return MSAPI_BAD_CREDENTIALS;
		if (entra_in(code, entra_reauthenticate, sizeof entra_reauthenticate / sizeof entra_reauthenticate[0]) ||
		    !strcmp(code, "invalid_grant") || !strcmp(code, "interaction_required") ||
		    !strcmp(code, "consent_required"))
			return MSAPI_REAUTHENTICATE;
		return MSAPI_REJECTED;
	}
	/* still expired after the one refresh; a delegated sign-in without a scope the call needs
	 * (app tokens carry no scopes, so only a user's sign-in meets it) */
	if (!strcmp(code, "TokenExpired") || !strcmp(code, "InsufficientScopes"))
		return MSAPI_REAUTHENTICATE;
	/* the credentials sent for a data source (Fabric connections, gateway data sources) */
	if (!strcmp(code, "IncorrectCredentials") || !strcmp(code, "InvalidCredentialDetails") ||
	    !strcmp(code, "DM_GWPipeline_Gateway_DataSourceAccessError") ||
	    !strcmp(code, "DM_GWPipeline_Gateway_InvalidConnectionCredentials"))
		return MSAPI_BAD_CREDENTIALS;
	if (!strcmp(code, "ItemDisplayNameAlreadyInUse") || !strcmp(code, "DuplicateConnectionName"))
		return MSAPI_NAME_TAKEN;
	if (status == 401 || status == 403)
		return MSAPI_FORBIDDEN;
	if (status == 404)
		return MSAPI_NOT_FOUND;
	return MSAPI_REJECTED;
}

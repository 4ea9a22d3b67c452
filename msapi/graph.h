/* Microsoft Graph: the display name of an application (service principal), so settings
 * pages can show "Contoso Exporter" rather than a client id. */
#ifndef PBIPORT_MSAPI_GRAPH_H
#define PBIPORT_MSAPI_GRAPH_H

#include "msapi/msapi.h"

/* GET /v1.0/servicePrincipals(appId='<app_id>'). The token must be for Graph
 * (ENTRA_SCOPE_GRAPH_DEFAULT); an app may always read its own service principal.
 * *name is new (displayName, else appDisplayName). */
int graph_app_display_name(msapi *c, const char *app_id, char **name, char *err);

#endif

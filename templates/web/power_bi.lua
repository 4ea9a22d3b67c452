-- /output-ports/{id}/power-bi: publish an output port to Power BI. This page is the Power BI modal
-- without JavaScript; with it, the product page shows #power-bi-panel in a <dialog>
-- (pbiport.js), so everything the dialog needs is inside that panel.
-- view.port: the output port (id, name, type, server); view.product = { id, name };
-- view.source: its source's description as a form needs it (core/lang/sources.h
-- source_desc_json: label, credentials = { { kind, label, fields = { { name, label, secret } } } },
-- request_fields = { { name, what } });
-- view.default_name: the semantic model name the API would use; view.workspaces: the user's
-- workspaces { id, name, role, writable }; view.connections: existing connections { id, name,
-- path } that point at view.data_source = { type, label, host, path }; view.on_premises: the
-- server is marked to publish through a gateway, and then view.gateways (as GET
-- /api/powerbi/gateways?output_port= lists them: { id, name, admin, data_sources = { { id, name,
-- matches } } }) instead of view.connections;
-- view.needs_http_path: a port whose source takes a value from the request (Databricks' HTTP
-- path) that its contract does not give (view.http_path: the one given); view.problem = { code, message }: what comes first (connect Power BI, the
-- organization's settings, Microsoft not answering); view.form: the earlier input of a refused
-- form (never a secret) and view.error = { code, message }: why it was refused.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local pbi = require("web.pbi")

local function hint(id, ...)
  return h.p{ class = "hint", id = id, ... }
end

-- What the request may give that the contract lacks, in words ("HTTP path").
local function request_what(view)
  local f = view.source and view.source.request_fields and view.source.request_fields[1]
  return f and f.what or "HTTP path"
end

local function request_hint(view)
  local f = view.source and view.source.request_fields and view.source.request_fields[1]
  return f and f.hint
end

local function product_url(view)
  return "/data-products/" .. view.product.id
end

-- Where Connect to Power BI comes back to: this page, or (in the dialog) the product page with
-- the dialog open again for this port.
local function connect_box(view)
  local p = view.problem
  local here, modal = view.page.path, product_url(view) .. "#power-bi=" .. view.port.id
  if p.code == "not_connected" or p.code == "needs_reconnect" then
    return h.div{ class = "connect-box",
      h.p{ p.code == "not_connected"
             and "To publish, pbiport acts as you in Power BI: connect your Power BI account first. "
               .. "You come back here afterwards."
             or p.message },
      h.p{ pbi.connect_button("Connect to Power BI", here, modal) },
    }
  end
  local owner = view.page.user and view.page.user.role == "owner"
  return h.div{ class = "notice", role = "alert",
    h.p{ p.message },
    p.code == "not_configured" and h.p{
      owner and { "Set it up in ", h.a{ href = "/settings/power-bi", "Settings ▸ Power BI" }, "." }
            or "An owner of your organization sets it up in Settings ▸ Power BI." },
    p.code ~= "not_configured" and h.p{ h.a{ href = here, "Try again" } },
  }
end

local function workspace_field(view, form)
  local options = { h.option{ value = "", "Choose a workspace" } }
  local chosen = form.workspace_id
  for _, ws in ipairs(view.workspaces or {}) do
    if ws.writable then
      options[#options + 1] = h.option{ value = ws.id, selected = ws.id == chosen, ws.name, " (", ws.role, ")" }
    else
      -- shown, not chosen: the role says why
      options[#options + 1] = h.option{ value = ws.id, disabled = true,
        ws.name, " (", ws.role, ": publishing needs Contributor, Member or Admin)" }
    end
  end
  return h.div{ class = "field",
    h.label{ ["for"] = "workspace", "Workspace" },
    hint("workspace-hint", "Your Fabric workspaces. Those where you are Viewer are listed but cannot be chosen."),
    h.select{ id = "workspace", name = "workspace_id", required = true, ["aria-describedby"] = "workspace-hint",
              options },
  }
end

local function name_field(view, form)
  return h.div{ class = "field",
    h.label{ ["for"] = "model-name", "Semantic model name" },
    hint("model-name-hint", "The name of the new semantic model in the workspace."),
    h.input{ type = "text", id = "model-name", name = "name", maxlength = "256", required = true,
             value = form.name or view.default_name, ["aria-describedby"] = "model-name-hint", autocomplete = "off" },
  }
end

local function text_field(id, name, label, kind, value, extra)
  return h.div{ class = "field",
    h.label{ ["for"] = id, label },
    extra,
    h.input{ type = kind or "text", id = id, name = name, value = value,
             autocomplete = kind == "password" and "new-password" or "off", spellcheck = "false" },
  }
end

-- The fields of one kind of credentials; secrets are never shown again.
local function cred_fields(kind, form)
  local out = {}
  for _, f in ipairs(kind.fields) do
    out[#out + 1] = text_field("conn-" .. f.name, f.name, f.label, f.secret and "password" or "text",
                               not f.secret and form[f.name] or nil)
  end
  return out
end

-- The credentials of a new connection, of the kinds the port's source takes (its description):
-- one kind's fields, or a choice of kinds, each followed by its fields (the stylesheet shows
-- only the chosen kind's).
local function new_connection_fields(view, form)
  local kinds = view.source.credentials
  if #kinds == 1 then
    return h.div{ class = "new-connection",
      h.input{ type = "hidden", name = "credential_type", value = kinds[1].kind },
      cred_fields(kinds[1], form),
    }
  end
  local chosen = form.credential_type or kinds[1].kind
  local choices = {}
  for _, k in ipairs(kinds) do
    local id = "cred-" .. k.kind
    choices[#choices + 1] = h.div{ class = "cred-kind",
      h.div{ class = "choice",
        h.input{ type = "radio", id = id, name = "credential_type", value = k.kind, checked = chosen == k.kind },
        h.label{ ["for"] = id, k.label } },
      h.div{ class = "cred-fields", cred_fields(k, form) },
    }
  end
  return h.div{ class = "new-connection",
    h.fieldset{ class = "choices", h.legend{ "Authentication" }, choices },
  }
end

local function source_text(ds)
  if not ds then return nil end
  local parts = { ds.label }
  for value in string.gmatch(ds.path or "", "[^;]+") do
    parts[#parts + 1] = { #parts == 1 and " " or " · ", h.code{ value } }
  end
  return parts
end

local function connection_field(view, form)
  local conns = view.connections or {}
  local chosen = form.connection or (conns[1] and conns[1].id) or "new"
  local items = {}
  for i, c in ipairs(conns) do
    local id = "conn-" .. i
    items[#items + 1] = h.div{ class = "choice",
      h.input{ type = "radio", id = id, name = "connection", value = c.id, checked = chosen == c.id },
      h.label{ ["for"] = id, c.name, c.path and h.span{ class = "muted", " · ", c.path } },
    }
  end
  items[#items + 1] = h.div{ class = "choice",
    h.input{ type = "radio", id = "conn-new", name = "connection", value = "new", checked = chosen == "new" },
    h.label{ ["for"] = "conn-new", "Create a new connection" },
  }
  return h.fieldset{ class = { "field", "choices", "connection-choice" },
    h.legend{ "Connection" },
    hint(nil, #conns > 0 and { "Your connections to ", source_text(view.data_source), ", or a new one." }
               or view.data_source and { "None of your connections points at ", source_text(view.data_source),
                                         ": create a new one." }
               or { "Give the ", request_what(view), " to see your connections, or create a new one." }),
    items,
    new_connection_fields(view, form),
  }
end

-- A server marked on-premises (docs/publish.md, "On-premises data gateways"): the gateway data
-- sources that point at the port's data source, and a new data source on each gateway the user
-- administers (with the source's credentials, which Power BI encrypts for the gateway).
local function gateway_field(view, form)
  local items, admin, chosen = {}, {}, form.gateway
  local function choice(id, value, label)
    chosen = chosen or value
    items[#items + 1] = h.div{ class = "choice",
      h.input{ type = "radio", id = id, name = "gateway", value = value, checked = chosen == value },
      h.label{ ["for"] = id, label },
    }
  end
  for _, g in ipairs(view.gateways or {}) do
    for _, ds in ipairs(g.data_sources or {}) do
      if ds.matches then
        choice("gw-" .. (#items + 1), "ds:" .. g.id .. ":" .. ds.id,
               { ds.name or ds.id, h.span{ class = "muted", " · on ", g.name or "a gateway shared with you" } })
      end
    end
    if g.admin then admin[#admin + 1] = g end
  end
  local found = #items
  for i, g in ipairs(admin) do
    choice("gw-new-" .. i, "new:" .. g.id, { "Create a new data source on ", g.name or g.id })
  end
  local target = view.data_source and { view.source.label, " ", h.code{ view.data_source.path } } or view.source.label
  return h.fieldset{ class = { "field", "choices", "gateway-choice" },
    h.legend{ "Gateway data source" },
    hint(nil, found > 0 and { "Data sources on your on-premises data gateways that point at ", target, "." }
               or { "No gateway data source you may use points at ", target,
                    #admin > 0 and ": create one on a gateway you administer."
                      or ": ask a gateway's admin to add one or to share it with you." }),
    items,
    #admin > 0 and new_connection_fields(view, form),
  }
end

-- A port whose contract lacks the value the request may give (Databricks' HTTP path): the value,
-- and a way to list the connections to it (a GET form of its own, before the publish form).
local function http_path_lookup(view)
  local what = request_what(view)
  return h.form{ method = "get", action = view.page.path, class = "inline-form",
    h.div{ class = "field",
      h.label{ ["for"] = "lookup-http-path", what },
      hint("lookup-hint", "The contract gives no ", what, " for this ", view.source.label, " server",
           request_hint(view) and { ": ", request_hint(view), "." } or "."),
      h.div{ class = "search-row",
        h.input{ type = "text", id = "lookup-http-path", name = "http_path", value = view.http_path, required = true,
                 ["aria-describedby"] = "lookup-hint", spellcheck = "false" },
        h.button{ type = "submit", class = view.http_path and "secondary" or nil,
                  view.http_path and "Find connections" or "Continue" },
      },
    },
  }
end

local function publish_form(view)
  local form = view.form or {}
  local err = view.error
  -- first the HTTP path, when the contract lacks it: the connections and the publish need it
  if view.needs_http_path and not view.http_path then return http_path_lookup(view) end
  return {
    view.needs_http_path and http_path_lookup(view),
    h.form{ method = "post", action = view.page.path, id = "power-bi-form", class = "stack",
            ["aria-describedby"] = err and "power-bi-error" or nil,
      layout.csrf(view),
      err and h.div{ class = "error-summary", role = "alert", id = "power-bi-error",
        h.h3{ "Not published" },
        h.p{ class = "message", err.message },
        (err.code == "not_connected" or err.code == "needs_reconnect") and
          h.p{ pbi.connect_button("Connect to Power BI", view.page.path,
                                  product_url(view) .. "#power-bi=" .. view.port.id) },
      },
      view.needs_http_path and view.http_path and h.input{ type = "hidden", name = "http_path", value = view.http_path },
      workspace_field(view, form),
      name_field(view, form),
      view.on_premises and gateway_field(view, form) or connection_field(view, form),
      h.div{ class = "buttons",
        h.button{ type = "submit", "Publish" },
        h.a{ class = "button secondary", href = product_url(view), ["data-dialog-close"] = true, "Cancel" },
      },
    },
  }
end

-- The HTTP path given does not lead to the port's data source: said above the path's form.
local function http_path_problem(view)
  return {
    h.div{ class = "error-summary", role = "alert", id = "http-path-error", h.p{ class = "message", view.problem.message } },
    http_path_lookup(view),
  }
end

-- A source Power BI reaches only through an on-premises data gateway (its description's
-- gateway_only) on a server the contract does not mark as on-premises: said instead of a form
-- that could not succeed (the API answers 409 source_needs_gateway).
local function gateway_box(view)
  return h.div{ class = "notice", role = "status",
    h.p{ "Power BI reaches ", view.source.label, " only through an on-premises data gateway: Fabric offers no ",
         "cloud connection for it. Mark the contract's server as on-premises (its custom property ",
         h.code{ "powerbi.gateway" }, " set to ", h.code{ "true" }, " or to a gateway's id) to publish it through ",
         "one of your gateways." },
  }
end

local function panel(view)
  local port = view.port
  local body
  if view.source and view.source.gateway_only and not view.on_premises then
    body = gateway_box(view)
  elseif not view.problem then
    body = publish_form(view)
  elseif view.problem.code == "bad_request" and view.needs_http_path then
    body = http_path_problem(view)
  else
    body = connect_box(view)
  end
  return h.section{ id = "power-bi-panel", class = "power-bi-panel", ["aria-labelledby"] = "power-bi-title",
    h.h2{ id = "power-bi-title", tabindex = "-1", "Publish to Power BI" },
    h.p{ class = "muted", "Data product ", h.strong{ view.product.name }, " · output port ", h.strong{ port.name },
         " ", h.span{ class = "badge", port.type } },
    body,
  }
end

return function(view)
  return layout.page(view, {
    title = "Open in Power BI",
    crumbs = { { "Data Products", "/" }, { view.product.name, product_url(view) } },
    main = panel(view),
  })
end

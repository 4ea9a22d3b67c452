-- /profile/power-bi: Your profile ▸ Power BI connections. The status of each of my Power BI
-- connections (the one the token service acts on), Connect to Power BI, Reconnect, Disconnect
-- (after a confirmation: pbiport.js asks in the browser, without JavaScript this page asks).
-- view.connections: as GET /api/me/powerbi-connections (id, tenant_id, client_id, status,
-- status_reason, scopes, created_at, updated_at); view.configured: the organization has Power BI
-- settings; view.application_name: its app's name; view.confirm_disconnect: the id of the
-- connection to confirm the disconnect of; view.disconnected: one was just disconnected.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local pbi = require("web.pbi")

local HERE = "/profile/power-bi"

local function disconnect_form(view, c, confirming)
  return h.form{ method = "post", action = HERE, class = "buttons",
                 ["data-confirm"] = not confirming and
                   "Disconnect Power BI? Publishing stops working until you connect again." or nil,
    layout.csrf(view),
    h.input{ type = "hidden", name = "action", value = "disconnect" },
    h.input{ type = "hidden", name = "connection_id", value = c.id },
    -- set by the confirmation (this page's, or the browser's through pbiport.js)
    h.input{ type = "hidden", name = "confirmed", value = confirming and "yes" or "" },
    h.button{ type = "submit", class = confirming and "danger" or "secondary", "Disconnect" },
    confirming and h.a{ class = "button secondary", href = HERE, "Keep it" },
  }
end

local function connection(view, c)
  local active = c.status == "active"
  local confirming = view.confirm_disconnect == c.id
  return h.section{ class = "connection", ["aria-labelledby"] = "conn-" .. c.id,
    h.h2{ id = "conn-" .. c.id, "Power BI connection" },
    h.dl{ class = "details",
      h.dt{ "Status" },
      h.dd{ active and h.span{ class = "badge state-succeeded", "Connected" }
                   or h.span{ class = "badge badge-warn", "Needs reconnect" },
            c.status_reason and h.div{ class = "status-reason", c.status_reason } },
      h.dt{ "Tenant" }, h.dd{ h.code{ c.tenant_id } },
      h.dt{ "Connected" }, h.dd{ pbi.time(c.created_at) },
      h.dt{ "Permissions" }, h.dd{ #(c.scopes or {}) .. " granted" },
    },
    confirming and h.div{ class = "notice", role = "alert", id = "confirm-disconnect",
      h.p{ h.strong{ "Disconnect Power BI?" }, " pbiport forgets your Power BI sign-in. Publishing stops working ",
           "until you connect again; what you published stays in Power BI." } },
    h.div{ class = "buttons",
      not confirming and pbi.connect_button("Reconnect", HERE, nil, active),
      disconnect_form(view, c, confirming),
    },
  }
end

return function(view)
  local features = view.page.features or {}
  local conns = view.connections or {}
  local main
  if not features.powerbi_web then
    main = h.p{ class = "notice", "Power BI publishing is turned off on this server." }
  else
    local list = {}
    for _, c in ipairs(conns) do list[#list + 1] = connection(view, c) end
    main = {
      view.disconnected and h.p{ class = "notice", role = "status", "Power BI is disconnected." },
      not view.configured and h.p{ class = "notice",
        "Power BI is not set up for your organization yet: an owner does that in Settings ▸ Power BI." },
      view.configured and view.application_name and
        h.p{ class = "muted", "Your organization's Power BI app: ", h.strong{ view.application_name } },
      #list > 0 and list or (view.configured and {
        h.p{ "You have not connected Power BI. pbiport publishes to Power BI as you, in workspaces where you may." },
        h.p{ pbi.connect_button("Connect to Power BI", HERE) },
      }),
    }
  end
  return layout.page(view, {
    title = "Power BI connections",
    crumbs = { { "Your profile", HERE } },
    main = main,
  })
end

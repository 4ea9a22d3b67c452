-- /settings/integrations: the organization's import integrations (owners), "Add Integration".
-- view.integrations: as GET /api/integrations shows them.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local runs = require("web.runs")

return function(view)
  local list = view.integrations or {}
  local rows = {}
  for _, i in ipairs(list) do
    rows[#rows + 1] = h.tr{
      h.th{ scope = "row", h.a{ href = "/settings/integrations/" .. i.id, i.name } },
      h.td{ i.schedule and h.code{ i.schedule } or h.span{ class = "muted", "by hand" } },
      h.td{ i.next_run_at and runs.time(i.next_run_at) or h.span{ class = "muted", "—" } },
      h.td{ runs.state(i.last_run_state) },
      h.td{ i.last_success_at and runs.time(i.last_success_at) or h.span{ class = "muted", "never" } },
    }
  end
  local body = layout.table{ caption = layout.count(#list, "integration"), rows = rows,
    empty = { "No integration yet. Add one to import workspaces, semantic models, reports and ",
              "dashboards from Power BI with a service principal." },
    "Name", "Schedule (UTC)", "Next run", "Last run", "Last success" }
  return layout.page(view, {
    title = "Integrations",
    crumbs = { { "Settings", "/settings/power-bi" } },
    actions = h.a{ class = "button", href = "/settings/integrations/new", "Add Integration" },
    main = body,
  })
end

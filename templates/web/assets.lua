-- /assets: what imports brought in from Power BI, by kind and name.
-- view.assets: assets as GET /api/assets shows them; view.type, view.q: the filter asked for.
local html = require("html")
local h = html.tags
local layout = require("web.layout")

local KINDS = {
  { "", "All kinds" }, { "workspace", "Workspaces" }, { "semantic_model", "Semantic models" },
  { "report", "Reports" }, { "dashboard", "Dashboards" }, { "datasource", "Data sources" },
}

local function kind_words(kind)
  return (string.gsub(kind or "", "_", " "))
end

local function filter_form(view)
  local options = {}
  for _, k in ipairs(KINDS) do
    options[#options + 1] = h.option{ value = k[1], selected = (view.type or "") == k[1], k[2] }
  end
  return h.form{ class = "search", method = "get", action = "/assets", role = "search",
    h.div{ class = "search-row",
      layout.field("type", "Kind", h.select{ id = "type", name = "type", options }),
      layout.field("q", "Name",
        h.input{ type = "search", id = "q", name = "q", value = view.q or "", placeholder = "Part of the name" },
        "grow"),
      h.button{ type = "submit", "Show" },
    },
  }
end

return function(view)
  local assets = view.assets or {}
  local rows = {}
  for _, a in ipairs(assets) do
    rows[#rows + 1] = h.tr{
      h.th{ scope = "row", h.a{ href = "/assets/" .. a.id, a.name ~= "" and a.name or a.powerbi_id } },
      h.td{ h.span{ class = { "badge", "kind-" .. a.kind }, kind_words(a.kind) } },
      h.td{ h.code{ a.powerbi_id } },
      h.td{ a.access or h.span{ class = "muted", "—" } },
      h.td{ h.time{ datetime = a.updated_at, string.sub(a.updated_at or "", 1, 10) } },
    }
  end
  local body = layout.table{ caption = layout.count(#assets, "asset"), rows = rows,
    empty = (view.type or view.q) and "No asset matches." or
      { "Nothing imported yet. An organization owner adds an integration under ",
        h.a{ href = "/settings/integrations", "Settings ▸ Integrations" }, "." },
    "Name", "Kind", "Power BI id", "Access", "Updated" }
  return layout.page(view, {
    title = "Assets",
    lead = h.p{ "Workspaces, semantic models, reports, dashboards and data sources imported from Power BI. ",
                "A semantic model or report can become a data product: open it and choose ",
                h.strong{ "Import from Microsoft Fabric" }, "." },
    main = { filter_form(view), body },
  })
end

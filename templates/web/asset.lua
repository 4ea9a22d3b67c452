-- /assets/{id}: one imported asset: what it is, its tables and columns (a semantic model's), what
-- is upstream and downstream of it, its lineage picture and, for a semantic model or report,
-- "Import from Microsoft Fabric" (it becomes a data product).
-- view.asset: as GET /api/assets/{id} shows it (with details); view.seen_by: the integrations that
-- see it; view.upstream, view.downstream: { id, type, name, href } one edge away; view.lineage_svg:
-- the picture's URL; view.importable: the import button is offered; view.error: why an import was
-- refused.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local lineage = require("web.lineage")

local function words(s)
  return (string.gsub(s or "", "_", " "))
end

local function shown(v)
  if v == nil or v == "" then return h.span{ class = "muted", "—" } end
  return v
end

local function node_list(nodes, none)
  if not nodes or #nodes == 0 then return h.p{ class = "muted", none } end
  local items = {}
  for _, n in ipairs(nodes) do
    local label = n.name or n.id
    items[#items + 1] = h.li{ n.href and h.a{ href = n.href, label } or label, " ",
                              h.span{ class = "badge badge-muted", words(n.type) } }
  end
  return h.ul{ items }
end

local function columns_table(t, i)
  local rows = {}
  for _, c in ipairs(t.columns or {}) do
    rows[#rows + 1] = h.tr{
      h.th{ scope = "row", c.name, c.hidden and { " ", h.span{ class = "badge badge-muted", "hidden" } } },
      h.td{ shown(c.data_type) },
      h.td{ shown(c.column_type) },
    }
  end
  local heading = "asset-table-" .. i
  return h.section{ class = "schema-table", ["aria-labelledby"] = heading,
    h.h3{ id = heading, t.name, t.hidden and { " ", h.span{ class = "badge badge-muted", "hidden" } } },
    #rows == 0 and h.p{ class = "muted", "No columns." } or
      layout.table{ caption = { "Columns of ", t.name }, hidden_caption = true, rows = rows,
                    "Column", "Data type", "Kind" },
    t.measures and #t.measures > 0 and h.p{ class = "muted", layout.count(#t.measures, "measure") },
  }
end

local function schema(a)
  local d = a.details or {}
  if a.kind ~= "semantic_model" then return nil end
  local out = {}
  for i, t in ipairs(d.tables or {}) do out[#out + 1] = columns_table(t, i) end
  return h.section{ ["aria-labelledby"] = "tables",
    h.h2{ id = "tables", "Tables and columns" },
    d.schema_error and h.p{ class = "notice", "Power BI did not give this model's schema: ", d.schema_error },
    #out > 0 and out or h.p{ class = "muted",
      "No tables: the integration that imported this model sees Power BI without the admin scanner APIs." },
  }
end

local function seen_by(list)
  if not list or #list == 0 then return nil end
  local items = {}
  for _, s in ipairs(list) do
    items[#items + 1] = h.li{ s.name or s.integration_id, " ", h.span{ class = "badge badge-muted", s.access },
                              s.refresh and h.span{ class = "muted", " (its service principal refreshes the model)" } }
  end
  return h.ul{ class = "inline-list", items }
end

local function import_form(view)
  if not view.importable then return nil end
  return h.form{ method = "post", action = view.page.path, class = "inline",
    layout.csrf(view),
    h.button{ type = "submit", "Import from Microsoft Fabric" },
  }
end

return function(view)
  local a = view.asset
  local d = a.details or {}
  local err = view.error
  local title = (a.name and a.name ~= "") and a.name or a.powerbi_id
  return layout.page(view, {
    title = title,
    crumbs = { { "Assets", "/assets" } },
    actions = {
      import_form(view),
      a.kind == "semantic_model" and h.a{ class = "button secondary", href = "/semantic-models/" .. a.id,
                                          "Refresh", h.span{ class = "visually-hidden", " ", title } },
      d.web_url and h.a{ class = "button secondary", href = d.web_url, rel = "noopener noreferrer", target = "_blank",
                         "Open in Power BI", h.span{ class = "visually-hidden", " (opens in a new tab)" } },
    },
    main = {
      err and h.div{ class = "error-summary", role = "alert",
        h.h2{ "The asset was not imported" }, h.p{ h.code{ class = "message", err } } },
      h.dl{ class = "details",
        h.dt{ "Kind" }, h.dd{ words(a.kind) },
        h.dt{ "Power BI id" }, h.dd{ h.code{ a.powerbi_id } },
        d.workspace_name and { h.dt{ "Workspace" }, h.dd{ d.workspace_name } },
        d.storage_mode and { h.dt{ "Storage mode" }, h.dd{ d.storage_mode } },
        d.configured_by and { h.dt{ "Configured by" }, h.dd{ d.configured_by } },
        h.dt{ "State" }, h.dd{ a.state == "removed" and h.span{ class = "badge badge-warn", "removed" } or a.state },
        h.dt{ "Seen by" }, h.dd{ seen_by(view.seen_by) or h.span{ class = "muted", "no integration" } },
        h.dt{ "Updated" }, h.dd{ h.time{ datetime = a.updated_at, a.updated_at } },
      },
      h.div{ class = "columns",
        h.section{ ["aria-labelledby"] = "upstream",
          h.h2{ id = "upstream", "Upstream" },
          node_list(view.upstream, "Nothing upstream is known."),
        },
        h.section{ ["aria-labelledby"] = "downstream",
          h.h2{ id = "downstream", "Downstream" },
          node_list(view.downstream, "Nothing downstream is known."),
        },
      },
      lineage.section{ url = view.lineage_svg, name = title },
      schema(a),
    },
  })
end

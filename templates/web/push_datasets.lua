-- /push-datasets: push datasets (the teams' I belong to; owners see all), their tables and the
-- rows pbiport sent, and Microsoft's notice about them.
-- view.push_datasets: as GET /api/push-datasets shows them, each table with `rows` (pbiport's
-- count of the rows in it); view.notice: the retirement notice.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local runs = require("web.runs")

local function tables(list)
  local items = {}
  for _, t in ipairs(list or {}) do
    items[#items + 1] = h.li{ h.strong{ t.name }, " ",
      h.span{ class = "muted", layout.count(#(t.columns or {}), "column"), " · " },
      h.span{ class = "rows", layout.count(t.rows or 0, "row"), " sent" } }
  end
  if #items == 0 then return h.span{ class = "muted", "none" } end
  return h.ul{ class = "plain", items }
end

return function(view)
  local list = view.push_datasets or {}
  local rows = {}
  for _, d in ipairs(list) do
    rows[#rows + 1] = h.tr{
      h.th{ scope = "row", d.name, h.div{ class = "muted", h.code{ d.powerbi_id } } },
      h.td{ h.code{ d.workspace_id } },
      h.td{ tables(d.tables) },
      h.td{ d.retention },
      h.td{ runs.time(d.created_at) },
    }
  end
  return layout.page(view, {
    title = "Push datasets",
    lead = h.p{ "Power BI push datasets that pipelines feed through pbiport's API (",
                h.code{ "POST /api/push-datasets/{id}/tables/{table}/rows" }, ")." },
    main = {
      h.div{ class = "notice", role = "note", id = "retirement",
        h.p{ h.strong{ "Microsoft stops the creation of new push datasets on 31 October 2027." },
             " Existing ones keep working." },
        h.p{ "Where to go instead: ", h.strong{ "Microsoft Fabric Real-Time Intelligence" },
             ": send the rows to an eventstream into an eventhouse (KQL database) and build reports on it. ",
             h.a{ href = "https://learn.microsoft.com/fabric/real-time-intelligence/overview",
                  rel = "noopener noreferrer", target = "_blank", "Real-Time Intelligence in Microsoft Fabric",
                  h.span{ class = "visually-hidden", " (opens in a new tab)" } } },
        h.p{ class = "muted", view.notice },
      },
      layout.table{ caption = layout.count(#list, "push dataset"), rows = rows, empty = "No push dataset yet.",
                    "Dataset", "Workspace", "Tables and rows sent", "Retention", "Created" },
    },
  })
end

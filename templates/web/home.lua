-- / : the data products of my organization, searchable, and "Add Data Product".
-- view.products: data products as GET /api/data-products shows them (matching view.q when
-- a search was made); view.total: how many the organization has.
local html = require("html")
local h = html.tags
local layout = require("web.layout")

local function port_list(ports)
  local items = {}
  for _, port in ipairs(ports or {}) do
    local retired = port.status == "retired"
    items[#items + 1] = h.li{ class = retired and "retired" or nil,
      port.name, " ", h.span{ class = "badge", port.type },
      retired and h.span{ class = "badge badge-muted", "retired" } }
  end
  if #items == 0 then return h.span{ class = "muted", "none" } end
  return h.ul{ class = "inline-list", items }
end

local function product_rows(products)
  local rows = {}
  for _, p in ipairs(products) do
    rows[#rows + 1] = h.tr{
      h.th{ scope = "row", h.a{ href = "/data-products/" .. p.id, p.name } },
      h.td{ p.type },
      h.td{ p.version or h.span{ class = "muted", "—" } },
      h.td{ port_list(p.output_ports) },
      h.td{ h.time{ datetime = p.updated_at, string.sub(p.updated_at or "", 1, 10) } },
    }
  end
  return rows
end

return function(view)
  local products = view.products or {}
  local search = h.form{ class = "search", method = "get", action = "/", role = "search",
    h.label{ ["for"] = "q", "Search data products" },
    h.div{ class = "search-row",
      h.input{ type = "search", id = "q", name = "q", value = view.q or "", placeholder = "Name or contract id" },
      h.button{ type = "submit", "Search" },
    },
  }
  local caption = view.q and string.format("%d of %d data products match", #products, view.total or #products)
    or layout.count(#products, "data product")
  local body = layout.table{ caption = { caption, view.q and { " ", h.q{ view.q } } }, rows = product_rows(products),
    empty = view.q and { "No data product matches ", h.q{ view.q }, ". ", h.a{ href = "/", "Show all" } }
      or "No data products yet: add one from its data contract.",
    "Name", "Type", "Version", "Output ports", "Updated" }
  return layout.page(view, {
    title = "Data Products",
    actions = h.a{ class = "button", href = "/data-products/new", "Add Data Product" },
    main = { search, body },
  })
end

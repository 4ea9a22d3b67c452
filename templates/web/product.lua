-- /data-products/{id}: a data product's output ports (server, status, published models,
-- "Open in" ▸ "Power BI Web") and the schema of its contract.
-- view.product: as GET /api/data-products/{id}; each port also has `models` (its published
-- semantic models, as GET /api/output-ports/{id}/powerbi-models: unpublished ones left out) and, for Snowflake and Databricks, `power_bi_url`. view.contract: the
-- parsed contract (tables, columns, ...), or view.contract_error; view.owner: the owner's
-- name; view.consumes: the agreements under which this product reads other ports;
-- view.lineage_svg: the URL of its lineage picture.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local lineage = require("web.lineage")

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function shown(v)
  if v == nil or v == "" then return h.span{ class = "muted", "—" } end
  return v
end

local function details_list(pairs_list)
  local items = {}
  for _, kv in ipairs(pairs_list) do
    items[#items + 1] = { h.dt{ kv[1] }, h.dd{ shown(kv[2]) } }
  end
  return h.dl{ class = "details", items }
end

-- Server connection fields, as the contract gives them.
local function server_details(server)
  local list = {}
  if type(server) ~= "table" then return nil end
  for _, k in ipairs(sorted_keys(server)) do
    local v = server[k]
    if k ~= "server" and k ~= "type" and k ~= "customProperties" and type(v) ~= "table" then
      list[#list + 1] = { k, tostring(v) }
    end
  end
  if type(server.customProperties) == "table" then
    for _, k in ipairs(sorted_keys(server.customProperties)) do
      local v = server.customProperties[k]
      if type(v) ~= "table" then list[#list + 1] = { k, tostring(v) } end
    end
  end
  if #list == 0 then return h.p{ class = "muted", "The contract gives no connection details for this server." } end
  return details_list(list)
end

local function models_list(models)
  if not models or #models == 0 then
    return h.p{ class = "muted", "No semantic model has been published from this port yet." }
  end
  local items = {}
  for _, m in ipairs(models) do
    items[#items + 1] = h.li{
      h.a{ class = "model-name", href = "/published-models/" .. m.id, m.name },
      " ",
      m.web_url and h.a{ href = m.web_url, rel = "noopener noreferrer", target = "_blank", "Open in Power BI",
                         h.span{ class = "visually-hidden", ": ", m.name, " (opens in a new tab)" } },
      m.published_at and h.span{ class = "muted", " · published ", h.time{ datetime = m.published_at,
                                                                           string.sub(m.published_at, 1, 10) } },
      m.updated_at and h.span{ class = "muted", " · updated ", h.time{ datetime = m.updated_at,
                                                                       string.sub(m.updated_at, 1, 10) } },
      -- the model's life (docs/lifecycle.md): what its contract or Power BI changed since
      m.update_available and { " ", h.span{ class = "badge", "update available" } },
      m.drift_cause and { " ", h.span{ class = "badge", "drift: ",
                                       m.drift_cause == "power_bi" and "Power BI" or m.drift_cause } },
    }
  end
  return h.ul{ class = "models", items }
end

local function can_publish(view, port)
  local features = view.page and view.page.features or {}
  return port.power_bi_url and port.status ~= "retired" and features.powerbi_web
end

local function open_in_menu(view, port)
  if not can_publish(view, port) then return nil end
  return h.details{ class = "menu",
    h.summary{ "Open in", h.span{ class = "visually-hidden", " (", port.name, ")" } },
    h.ul{ role = "list",
      h.li{ h.a{ href = port.power_bi_url, ["data-power-bi-port"] = port.id, "Power BI Web" } },
    },
  }
end

local function port_section(view, port)
  local retired = port.status == "retired"
  local heading_id = "port-" .. port.id
  return h.section{ class = { "port", retired and "retired" }, ["aria-labelledby"] = heading_id,
    h.div{ class = "port-head",
      h.h3{ id = heading_id, port.name, " ", h.span{ class = "badge", port.type },
            retired and h.span{ class = "badge badge-warn", "Retired" } },
      open_in_menu(view, port),
    },
    retired and h.p{ class = "notice",
      "This port's server left the contract", port.retired_at and { " on ", string.sub(port.retired_at, 1, 10) },
      ". It is kept for the models and agreements that use it and takes no new publishes." },
    h.h4{ "Server" },
    server_details(port.server),
    h.h4{ "Published models" },
    models_list(port.models),
  }
end

local function flags(col)
  local out = {}
  if col.primary_key then out[#out + 1] = h.span{ class = "badge", "primary key" } end
  if col.required then out[#out + 1] = h.span{ class = "badge badge-muted", "required" } end
  if col.unique then out[#out + 1] = h.span{ class = "badge badge-muted", "unique" } end
  return out
end

local function table_section(t, i)
  local rows = {}
  for _, col in ipairs(t.columns or {}) do
    rows[#rows + 1] = h.tr{
      h.th{ scope = "row", col.name, col.physical_name and col.physical_name ~= col.name
                            and h.div{ class = "muted", h.code{ col.physical_name } } },
      h.td{ col.logical_type, col.physical_type and h.div{ class = "muted", h.code{ col.physical_type } } },
      h.td{ col.description and h.span{ class = "description", col.description } or h.span{ class = "muted", "—" } },
      h.td{ flags(col) },
    }
  end
  local heading_id = "table-" .. i
  return h.section{ class = "schema-table", ["aria-labelledby"] = heading_id,
    h.h3{ id = heading_id, t.name, t.physical_type and { " ", h.span{ class = "badge badge-muted", t.physical_type } } },
    t.description and h.p{ class = "description", t.description },
    layout.table{ caption = { "Columns of ", t.name }, hidden_caption = true, rows = rows,
                  "Column", "Type", "Description", "Constraints" },
  }
end

local function schema(view)
  if view.contract_error then
    return h.p{ class = "notice", "The stored contract cannot be read: ", view.contract_error }
  end
  local tables = view.contract and view.contract.tables or {}
  if #tables == 0 then return h.p{ class = "muted", "The contract describes no tables." } end
  local out = {}
  for i, t in ipairs(tables) do out[#out + 1] = table_section(t, i) end
  return out
end

local function consumes(view)
  local list = view.consumes or {}
  if #list == 0 then return nil end
  local items = {}
  for _, a in ipairs(list) do
    local p = a.provider or {}
    items[#items + 1] = h.li{ h.a{ href = "/data-products/" .. (p.data_product_id or ""), p.data_product_name },
                              " ▸ ", p.output_port_name, " ", h.span{ class = "badge badge-muted", a.state } }
  end
  return h.section{ ["aria-labelledby"] = "consumes", h.h2{ id = "consumes", "Consumes" }, h.ul{ items } }
end

-- The Power BI modal: pbiport.js opens it from a port's Open in ▸ Power BI Web and fills it with
-- the #power-bi-panel of the link's page (/output-ports/{id}/power-bi), which works on its own
-- without JavaScript.
local function power_bi_dialog(any)
  if not any then return nil end
  return h.dialog{ id = "power-bi-dialog", class = "modal", ["aria-labelledby"] = "power-bi-title",
                   ["aria-label"] = "Publish to Power BI",
    h.div{ class = "modal-head",
      h.button{ type = "button", class = "modal-close secondary", ["data-dialog-close"] = true,
                h.span{ ["aria-hidden"] = "true", "×" }, h.span{ class = "visually-hidden", "Close" } } },
    h.div{ class = "modal-body", ["data-modal-body"] = true,
      h.h2{ id = "power-bi-title", "Publish to Power BI" }, h.p{ class = "muted", "Loading…" } },
  }
end

return function(view)
  local p = view.product
  local c = view.contract or {}
  local ports, any_menu = {}, false
  for _, port in ipairs(p.output_ports or {}) do
    ports[#ports + 1] = port_section(view, port)
    any_menu = any_menu or can_publish(view, port)
  end
  local summary = details_list({
    { "Type", p.type },
    { "Version", p.version },
    { "Contract id", p.contract_id and h.code{ p.contract_id } },
    { "Owner", view.owner },
    { "Updated", p.updated_at and h.time{ datetime = p.updated_at, p.updated_at } },
  })
  return layout.page(view, {
    title = p.name,
    crumbs = { { "Data Products", "/" } },
    lead = c.description and h.p{ class = "description", c.description },
    main = {
      summary,
      h.section{ ["aria-labelledby"] = "ports",
        h.h2{ id = "ports", "Output ports" },
        #ports > 0 and ports or h.p{ class = "muted", "This data product has no output ports." },
      },
      consumes(view),
      h.section{ ["aria-labelledby"] = "schema", h.h2{ id = "schema", "Schema" }, schema(view) },
      lineage.section{ url = view.lineage_svg, name = p.name },
      power_bi_dialog(any_menu),
    },
  })
end

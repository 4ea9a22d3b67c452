-- /published-models/{id}: a published semantic model's life (docs/lifecycle.md): what it was
-- built from, the update its contract offers (Preview update, Update model), its drift (Check
-- drift now), auto-update and Unpublish.
-- view.model: as GET /api/published-models/{id}; view.may_change: the user published it or owns
-- the organization; view.preview: the update's dry run (the diff plus contract) when asked;
-- view.drift_now: the drift read now when asked; view.error = { code, message }: why the last
-- action was refused.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local runs = require("web.runs")

local CAUSES = { contract = "the contract changed", power_bi = "edited in Power BI",
                 both = "the contract changed and it was edited in Power BI" }

local function yes_no(b) return b and "yes" or "no" end

-- A diff's changes (core/lang/model_diff.h) as a table; none: what says so.
local function changes_table(changes, caption, none)
  local rows = {}
  for _, c in ipairs(changes or {}) do
    rows[#rows + 1] = h.tr{
      h.td{ c.object }, h.td{ c.table or h.span{ class = "muted", "—" } }, h.th{ scope = "row", c.name },
      h.td{ c.change, c.breaking and { " ", h.span{ class = { "badge", "badge-warn" }, "breaking" } } },
    }
  end
  return layout.table{ class = "changes", caption = caption, rows = rows, empty = none,
                       "Object", "Table", "Name", "Change" }
end

-- A diff's summary in words: "2 added, 1 removed, 0 changed", then "; breaking" when it is.
local function summary(s)
  if not s then return nil end
  return string.format("%d added, %d removed, %d changed%s", s.added or 0, s.removed or 0, s.changed or 0,
                       s.breaking and "; breaking" or "")
end

-- What the update would change, with what Power BI keeps and what blocks it.
local function diff_view(d, caption)
  local kept, blocking = {}, {}
  for _, k in ipairs(d.kept or {}) do
    kept[#kept + 1] = h.li{ k.object, " ", k.table and (k.table .. ".") or "", k.name }
  end
  for _, b in ipairs(d.blocking or {}) do
    local to = b.refers_to or {}
    blocking[#blocking + 1] = h.li{ b.object, " ", b.table and (b.table .. ".") or "", b.name, " uses ",
                                    to.table or "", to.column and ("." .. to.column) or "" }
  end
  return {
    h.p{ summary(d.summary) },
    changes_table(d.changes, caption, "Nothing to change: the model is what the contract makes."),
    #kept > 0 and { h.h3{ "Kept as it is (added in Power BI)" }, h.ul{ kept } },
    #blocking > 0 and { h.h3{ "Blocking: added in Power BI and using what the update removes" },
                        h.ul{ class = "field-error", blocking } },
  }
end

local function details(m)
  local port, contract = m.output_port or {}, m.contract or {}
  local list = {
    { "State", runs.state(m.state) },
    { "Data product", port.data_product_id and h.a{ href = "/data-products/" .. port.data_product_id,
                                                   port.data_product_name or port.data_product_id } },
    { "Output port", { port.name, port.retired and { " ", h.span{ class = "badge", "retired" } } } },
    { "Built from contract", { contract.version and ("version " .. contract.version) or "no version",
                               contract.revision and (", revision " .. contract.revision) or "" } },
    { "Workspace", h.code{ m.workspace_id } },
    { "Semantic model", h.code{ m.semantic_model_id } },
    { "Published", { runs.time(m.published_at), m.publisher and { " by ", m.publisher.name } } },
    { "Last updated", runs.time(m.updated_at) },
    { "Connection", m.connection and { h.code{ m.connection.id },
                                       m.connection.created_by_pbiport and " (made for this model)" or "" } },
    { "Auto-update", m.auto_update == "additive" and "additions to the contract are applied at once" or "off" },
  }
  if m.unpublished_at then
    list[#list + 1] = { "Unpublished", { runs.time(m.unpublished_at), m.unpublished_by and { " by ", m.unpublished_by.name } } }
  end
  local items = {}
  for _, kv in ipairs(list) do
    items[#items + 1] = { h.dt{ kv[1] }, h.dd{ kv[2] or h.span{ class = "muted", "—" } } }
  end
  return h.dl{ class = "details", items }
end

-- A checkbox and its label, as the other forms lay out a choice.
local function checkbox(name, label)
  local id = "opt-" .. name
  return h.div{ class = "choice",
    h.input{ type = "checkbox", id = id, name = name, value = "yes" }, h.label{ ["for"] = id, label } }
end

local function action_form(view, action, label, class, more, confirm)
  return h.form{ method = "post", action = view.page.path, class = "inline-form", ["data-confirm"] = confirm,
    layout.csrf(view), more,
    h.button{ type = "submit", name = "action", value = action, class = class, label },
  }
end

local function update_section(view, m, live)
  local d = view.preview
  return h.section{ ["aria-labelledby"] = "update-heading",
    h.h2{ id = "update-heading", "Update from the contract" },
    m.update_available and h.p{ h.span{ class = "badge", "update available" },
      " The contract changed since this model was built." } or
      h.p{ class = "muted", "No update is waiting: the model is what its contract made when it was last built." },
    m.update and not d and diff_view(m.update, "What the contract changes since the model was built"),
    d and { h.h3{ "Preview against the live model" }, diff_view(d, "What Update model would change now") },
    live and view.may_change and h.div{ class = "buttons",
      action_form(view, "preview", "Preview update", "secondary"),
      action_form(view, "update", "Update model", nil,
        checkbox("allow_breaking", "Allow breaking changes (removed tables or columns, changed types)")),
    },
  }
end

local function drift_section(view, m)
  local now, rec = view.drift_now, m.drift
  return h.section{ ["aria-labelledby"] = "drift-heading",
    h.h2{ id = "drift-heading", "Drift" },
    rec and h.p{ h.span{ class = { "badge", "badge-warn" }, "drift" }, " ", CAUSES[rec.cause] or rec.cause,
                 " (", summary(rec.summary), "), found ", runs.time(rec.detected_at) } or
      h.p{ class = "muted", "No drift recorded by the daily check." },
    now and {
      h.h3{ "Checked now" },
      h.p{ role = "status", now.cause and ("Drift: " .. (CAUSES[now.cause] or now.cause)) or
           "No drift: the model is what its contract makes." },
      now.contract_error and h.p{ class = "field-error", now.contract_error },
      #(now.contract_changes or {}) > 0 and changes_table(now.contract_changes, "Changed by the contract"),
      #(now.power_bi_changes or {}) > 0 and changes_table(now.power_bi_changes, "Changed in Power BI"),
    },
    action_form(view, "drift", "Check drift now", "secondary"),
  }
end

local function settings_section(view, m)
  return h.section{ ["aria-labelledby"] = "auto-heading",
    h.h2{ id = "auto-heading", "Auto-update" },
    h.form{ method = "post", action = view.page.path, class = "stack",
      layout.csrf(view),
      layout.field("auto_update", "When the contract only adds tables or columns",
        h.select{ id = "auto_update", name = "auto_update",
          h.option{ value = "off", selected = m.auto_update ~= "additive", "Wait for someone to update" },
          h.option{ value = "additive", selected = m.auto_update == "additive", "Update the model at once" } }),
      h.div{ class = "buttons", h.button{ type = "submit", name = "action", value = "auto_update", "Save" } },
    },
  }
end

local function unpublish_section(view, m)
  return h.section{ ["aria-labelledby"] = "unpublish-heading",
    h.h2{ id = "unpublish-heading", "Unpublish" },
    h.p{ "Deletes the semantic model in Power BI", m.connection and m.connection.created_by_pbiport and
         " and the connection made for it" or "", ", and ends the agreement." },
    action_form(view, "unpublish", "Unpublish", "danger", {
      checkbox("keep_model", "Keep the model in Power BI (pbiport lets it go)"),
      checkbox("keep_connection", "Keep the connection"),
    }, "Unpublish " .. (m.name or "this model") .. "?"),
  }
end

return function(view)
  local m = view.model
  local port = m.output_port or {}
  local live = m.state ~= "unpublished" and m.state ~= "detached"
  local busy = m.state == "updating" or m.state == "unpublishing"
  return layout.page(view, {
    title = m.name,
    crumbs = { { "Data Products", "/" },
               port.data_product_id and { port.data_product_name or "Data product", "/data-products/" .. port.data_product_id } or nil },
    actions = live and {
      m.web_url and h.a{ class = "button", href = m.web_url, rel = "noopener noreferrer", target = "_blank",
                         "Open in Power BI", h.span{ class = "visually-hidden", " (opens in a new tab)" } },
      " ", h.a{ class = { "button", "secondary" }, href = "/semantic-models/" .. m.id, "Refreshes" },
    },
    main = {
      layout.form_error(view.error and view.error.message, "That was not done"),
      busy and m.lifecycle_job_id and h.p{ class = "notice", role = "status",
        m.state == "updating" and "An update is at work: " or "Unpublishing: ",
        h.a{ href = "/jobs/" .. m.lifecycle_job_id, "follow the job" }, "." },
      details(m),
      live and not view.may_change and h.p{ class = "muted",
        "Only the user who published this model or an organization owner can update or unpublish it." },
      live and update_section(view, m, live),
      live and drift_section(view, m),
      live and view.may_change and settings_section(view, m),
      live and view.may_change and not busy and unpublish_section(view, m),
    },
  })
end

-- /settings/integrations/{id}: one import integration (owners): status, schedule with its next
-- runs, filters, Test (the permission doctor's checks with their fixes), Run now, the last 10 runs.
-- view.integration: as GET /api/integrations/{id} shows it; view.next_runs: its schedule's next
-- times; view.runs: the last runs, newest first, as GET /api/integrations/{id}/runs shows them;
-- view.test: the permission doctor's report after Test ({ ok, checks = [{ check, ok, message,
-- fix }] }); view.test_error: why the test could not be made.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local runs = require("web.runs")

local CHECK_WORDS = {
  credentials = "Credentials", fabric_api_access = "Fabric API access", admin_api_access = "Admin API access",
  detailed_metadata = "Detailed metadata", mashup_expressions = "DAX and mashup expressions",
  workspace_roles = "Workspace roles",
}

local COUNTS = {
  { "workspaces", "Workspaces" }, { "semantic_models", "Models" }, { "reports", "Reports" },
  { "dashboards", "Dashboards" },
}

local function pattern_list(list)
  if not list or #list == 0 then return nil end
  local items = {}
  for _, p in ipairs(list) do items[#items + 1] = h.li{ h.code{ p } } end
  return h.ul{ class = "inline-list", items }
end

local function filters(f)
  local rows = {}
  for _, g in ipairs({ { "workspaces", "Workspaces" }, { "semantic_models", "Semantic models" },
                       { "reports", "Reports" } }) do
    local group = f and f[g[1]] or {}
    rows[#rows + 1] = h.tr{ h.th{ scope = "row", g[2] },
      h.td{ pattern_list(group.include) or h.span{ class = "muted", "everything" } },
      h.td{ pattern_list(group.exclude) or h.span{ class = "muted", "nothing" } } }
  end
  return layout.table{ caption = "Filters", hidden_caption = true, rows = rows, "Items", "Include", "Exclude" }
end

local function check_mark(ok)
  if ok == true then return h.span{ class = "badge badge-ok", "passed" } end
  if ok == false then return h.span{ class = "badge badge-warn", "failed" } end
  return h.span{ class = "badge badge-muted", "not checked" }
end

local function test_section(view)
  local t, terr = view.test, view.test_error
  if not t and not terr then return nil end
  local body
  if terr then
    body = h.div{ class = "error-summary", role = "alert", h.h3{ "The test could not be made" },
                  h.p{ h.code{ class = "message", terr } } }
  else
    local items = {}
    for _, c in ipairs(t.checks or {}) do
      items[#items + 1] = h.li{ class = "check",
        h.div{ class = "check-head", check_mark(c.ok), " ", h.strong{ CHECK_WORDS[c.check] or c.check } },
        c.message and h.p{ c.message },
        c.fix and h.p{ class = "fix", h.strong{ "Fix: " }, c.fix },
      }
    end
    body = { h.p{ role = "status", class = t.ok and "ok" or "notice",
                  t.ok and "Every check passed: this service principal can import." or
                  "Some checks failed: see the fixes below." },
             h.ol{ class = "checks", items } }
  end
  return h.section{ id = "test", ["aria-labelledby"] = "test-heading",
    h.h2{ id = "test-heading", "Test" }, body }
end

local function run_rows(list)
  local rows = {}
  for _, r in ipairs(list) do
    local c = r.counts or {}
    local cells = {}
    for _, k in ipairs(COUNTS) do cells[#cells + 1] = h.td{ class = "num", c[k[1]] or h.span{ class = "muted", "—" } } end
    local warnings = {}
    for _, w in ipairs(r.warnings or {}) do warnings[#warnings + 1] = h.li{ w } end
    rows[#rows + 1] = h.tr{
      h.th{ scope = "row", runs.time(r.started_at or r.created_at) },
      h.td{ r.trigger }, h.td{ r.mode or h.span{ class = "muted", "—" } },
      h.td{ runs.state(r.state),
            r.waiting and h.div{ class = "muted", "waits until ", runs.time(r.waiting["until"]), ": ", r.waiting.reason } },
      cells,
      h.td{ class = "num", c.added and { "+", c.added, " ~", c.changed or 0, " −", c.removed or 0 } or
                           h.span{ class = "muted", "—" } },
      h.td{ #warnings > 0 and h.ul{ class = "warnings", warnings } or nil,
            r.error and h.p{ class = "field-error", h.code{ r.error.code }, " ", r.error.message },
            #warnings == 0 and not r.error and h.span{ class = "muted", "none" } },
    }
  end
  return rows
end

local function runs_section(view)
  local list = view.runs or {}
  local active = false
  for _, r in ipairs(list) do active = active or runs.active(r.state) end
  -- a page that answered a form (Test) is not reloaded: that would post the form again
  local reload = active and not view.test and not view.test_error
  return h.section{ ["aria-labelledby"] = "runs", ["data-reload-while-active"] = reload and "3" or nil,
    h.h2{ id = "runs", "Last 10 runs" },
    reload and h.p{ class = "muted", role = "status", "A run is going on; this page reloads until it ends." },
    layout.table{ class = "runs", caption = "Last 10 runs, newest first", hidden_caption = true,
                  rows = run_rows(list), empty = { "Not run yet. ", h.strong{ "Run now" }, " starts the first import." },
                  "Started", "Trigger", "Mode", "State", "Workspaces", "Models", "Reports", "Dashboards",
                  h.abbr{ title = "added, changed, removed", "Changes" }, "Warnings" },
  }
end

return function(view)
  local i = view.integration
  local next_items = {}
  for _, t in ipairs(view.next_runs or {}) do next_items[#next_items + 1] = h.li{ runs.time(t) } end
  return layout.page(view, {
    title = i.name,
    crumbs = { { "Settings", "/settings/power-bi" }, { "Integrations", "/settings/integrations" } },
    actions = h.form{ method = "post", action = view.page.path, class = "buttons",
      layout.csrf(view),
      h.button{ type = "submit", name = "action", value = "test", class = "secondary", "Test" },
      h.button{ type = "submit", name = "action", value = "run", "Run now" },
    },
    main = {
      h.dl{ class = "details",
        h.dt{ "Status" }, h.dd{ runs.state(i.last_run_state) },
        h.dt{ "Last success" }, h.dd{ i.last_success_at and runs.time(i.last_success_at) or h.span{ class = "muted", "never" } },
        h.dt{ "Schedule" }, h.dd{ i.schedule and { h.code{ i.schedule }, " (UTC)" } or h.span{ class = "muted", "by hand only" } },
        #next_items > 0 and { h.dt{ "Next runs" }, h.dd{ h.ol{ class = "next-runs", next_items } } },
        h.dt{ "Tenant ID" }, h.dd{ h.code{ i.tenant_id } },
        h.dt{ "Client ID" }, h.dd{ h.code{ i.client_id } },
        h.dt{ "Client Secret" }, h.dd{ i.has_client_secret and "set" or h.span{ class = "muted", "not set" } },
        h.dt{ "Personal workspaces" }, h.dd{ i.include_personal and "included" or "left out" },
      },
      test_section(view),
      runs_section(view),
      h.section{ ["aria-labelledby"] = "filters", h.h2{ id = "filters", "Filters" }, filters(i.filters) },
    },
  })
end

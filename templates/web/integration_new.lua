-- /settings/integrations/new: the Add Integration wizard (owners), in four steps: Credentials,
-- Filters, Schedule, Name. The form posts to this page; a refused one comes back with its message
-- and what was typed (never the client secret).
-- view.form: the fields typed before; view.presets: [{ schedule, runs }] the preset schedules with
-- their next runs; view.preview: { schedule, runs | error } for the schedule typed (?schedule=, or
-- the form's); view.error: why the integration was not added.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local runs = require("web.runs")

local PRESET_WORDS = {
  ["@daily"] = "Every day at 00:00",
  ["@twice_daily"] = "Twice a day, at 00:00 and 12:00",
  ["@weekly"] = "Every Sunday at 00:00",
  ["@monthly"] = "On the first of every month at 00:00",
}

local GROUPS = {
  { "workspaces", "Workspaces" }, { "semantic_models", "Semantic models" }, { "reports", "Reports" },
}

local function text_field(form, p)
  return h.div{ class = "field",
    h.label{ ["for"] = p.name, p.label },
    p.hint and h.p{ class = "hint", id = p.name .. "-hint", p.hint },
    h.input{ type = p.type or "text", id = p.name, name = p.name, value = p.type ~= "password" and form[p.name] or nil,
             required = p.required, autocomplete = p.autocomplete or "off", spellcheck = "false",
             placeholder = p.placeholder, ["aria-describedby"] = p.hint and (p.name .. "-hint") or nil },
  }
end

local function run_list(list)
  local items = {}
  for _, t in ipairs(list or {}) do items[#items + 1] = h.li{ runs.time(t) } end
  return h.ol{ class = "next-runs", items }
end

local function preview(view)
  local p = view.preview
  local body
  if not p then
    body = h.p{ class = "muted", "Type a cron schedule to see its next runs." }
  elseif p.error then
    body = h.p{ class = "field-error", h.code{ p.schedule }, ": ", p.error }
  else
    body = { h.p{ "Next runs of ", h.code{ p.schedule }, ":" }, run_list(p.runs) }
  end
  return h.div{ id = "schedule-preview", class = "schedule-preview", ["aria-live"] = "polite", body }
end

local function schedule_step(view, form)
  local chosen = form.schedule or ""
  local options = {
    h.div{ class = "choice",
      h.input{ type = "radio", id = "schedule-none", name = "schedule", value = "", checked = chosen == "" },
      h.label{ ["for"] = "schedule-none", "By hand only ", h.span{ class = "muted", "(Run now on the integration's page)" } },
    },
  }
  for i, p in ipairs(view.presets or {}) do
    local id = "schedule-" .. i
    options[#options + 1] = h.div{ class = "choice",
      h.input{ type = "radio", id = id, name = "schedule", value = p.schedule, checked = chosen == p.schedule,
               ["aria-describedby"] = id .. "-runs" },
      h.label{ ["for"] = id, PRESET_WORDS[p.schedule] or p.schedule, " UTC ", h.code{ class = "muted", p.schedule } },
      h.p{ class = "hint", id = id .. "-runs",
           p.runs and { "Next: ", html.join((function()
             local t = {}
             for k = 1, math.min(3, #p.runs) do t[k] = runs.time(p.runs[k]) end
             return t
           end)(), ", ") } or p.error },
    }
  end
  options[#options + 1] = h.div{ class = "choice",
    h.input{ type = "radio", id = "schedule-custom", name = "schedule", value = "custom", checked = chosen == "custom" },
    h.label{ ["for"] = "schedule-custom", "Cron (UTC)" },
    h.div{ class = "field indent",
      h.label{ ["for"] = "cron", class = "visually-hidden", "Cron schedule (UTC)" },
      h.p{ class = "hint", id = "cron-hint",
           "Five fields: minute hour day-of-month month day-of-week, e.g. ", h.code{ "30 5 * * 1-5" },
           " for 05:30 UTC on weekdays. At most every 12 hours unless the administrator allows more." },
      h.input{ type = "text", id = "cron", name = "cron", value = form.cron, spellcheck = "false", autocomplete = "off",
               ["aria-describedby"] = "cron-hint schedule-preview", ["data-schedule-input"] = "schedule-custom" },
      preview(view),
    },
  }
  return h.fieldset{ class = "step",
    h.legend{ h.span{ class = "step-number", "3" }, " Schedule" },
    h.p{ class = "hint", "When the import runs by itself. Times are UTC." },
    h.div{ class = "choices", role = "radiogroup", ["aria-label"] = "Schedule", options },
  }
end

local function filters_step(form)
  local groups = {}
  for _, g in ipairs(GROUPS) do
    local inc, exc = g[1] .. "_include", g[1] .. "_exclude"
    groups[#groups + 1] = h.fieldset{ class = "filter-group",
      h.legend{ g[2] },
      h.div{ class = "field",
        h.label{ ["for"] = inc, "Include" },
        h.textarea{ id = inc, name = inc, rows = "2", spellcheck = "false", ["aria-describedby"] = "filters-hint",
                    placeholder = "*", form[inc] or "" },
      },
      h.div{ class = "field",
        h.label{ ["for"] = exc, "Exclude" },
        h.textarea{ id = exc, name = exc, rows = "2", spellcheck = "false", ["aria-describedby"] = "filters-hint",
                    form[exc] or "" },
      },
    }
  end
  return h.fieldset{ class = "step",
    h.legend{ h.span{ class = "step-number", "2" }, " Filters" },
    h.p{ class = "hint", id = "filters-hint",
         "One pattern per line. ", h.code{ "*" }, " matches any run of characters (", h.code{ "Sales*" },
         ", ", h.code{ "*test*" }, "); letters match without regard to case. An empty include list means ",
         "everything; an exclude match wins over an include match." },
    h.div{ class = "filter-groups", groups },
    h.div{ class = "choice",
      h.input{ type = "checkbox", id = "include_personal", name = "include_personal", value = "true",
               checked = form.include_personal == true },
      h.label{ ["for"] = "include_personal", "Include personal workspaces (My workspace)" },
    },
  }
end

return function(view)
  local form = view.form or {}
  local err = view.error
  return layout.page(view, {
    title = "Add Integration",
    crumbs = { { "Settings", "/settings/power-bi" }, { "Integrations", "/settings/integrations" } },
    lead = h.p{ "Import workspaces, semantic models, reports and dashboards from Power BI with a service ",
                "principal. After adding it, test its permissions and run it from its page." },
    main = {
      layout.form_error(err, "The integration was not added",
                        h.p{ "The client secret is not shown again: type it again." }),
      h.form{ method = "post", action = "/settings/integrations/new", class = "stack wizard",
              ["data-wizard"] = true,
        layout.csrf(view),
        h.fieldset{ class = "step",
          h.legend{ h.span{ class = "step-number", "1" }, " Credentials" },
          h.p{ class = "hint", "The Microsoft Entra app (service principal) that reads Power BI. It needs the ",
               "Power BI admin API setting for service principals; Test on the next page says what is missing." },
          text_field(form, { name = "tenant_id", label = "Tenant ID", required = true,
                             placeholder = "00000000-0000-0000-0000-000000000000" }),
          text_field(form, { name = "client_id", label = "Client ID", required = true,
                             placeholder = "00000000-0000-0000-0000-000000000000" }),
          text_field(form, { name = "client_secret", label = "Client Secret", type = "password", required = true,
                             autocomplete = "new-password", hint = "Stored encrypted; never shown again." }),
        },
        filters_step(form),
        schedule_step(view, form),
        h.fieldset{ class = "step",
          h.legend{ h.span{ class = "step-number", "4" }, " Name" },
          text_field(form, { name = "name", label = "Name", required = true,
                             hint = "Unique in your organization, e.g. prod." }),
        },
        h.div{ class = "buttons",
          h.button{ type = "submit", "Add Integration" },
          h.a{ class = "button secondary", href = "/settings/integrations", "Cancel" },
        },
      },
    },
  })
end

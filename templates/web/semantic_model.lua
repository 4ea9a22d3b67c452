-- /semantic-models/{id}: a semantic model's refreshes: Refresh now, its refresh schedule (set or
-- remove), the history as a table and a small chart of durations and outcomes.
-- view.model: as GET /api/semantic-models/{id}/refreshes shows it ({ model_ref, name, refreshes,
-- powerbi_history, powerbi_error }), newest first, each refresh with duration_s when it ended;
-- view.chart: { bars = the newest refreshes with a duration, oldest first, longest_s };
-- view.schedule: { schedule, next_run_at } (nil values without one); view.next_runs: its next
-- times; view.error: why the last change was refused.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local runs = require("web.runs")

local PRESETS = {
  { "@daily", "Every day at 00:00 UTC" }, { "@twice_daily", "Twice a day, 00:00 and 12:00 UTC" },
  { "@weekly", "Every Sunday at 00:00 UTC" }, { "@monthly", "The first of every month at 00:00 UTC" },
}

local function duration(secs)
  if not secs then return nil end
  if secs < 60 then return string.format("%.1f s", secs) end
  if secs < 3600 then return string.format("%d min %02d s", secs // 60, math.floor(secs % 60)) end
  return string.format("%d h %02d min", secs // 3600, math.floor(secs % 3600 / 60))
end

local function outcome(status)
  if status == "Completed" then return "bar-ok" end
  if status == "Failed" then return "bar-failed" end
  return "bar-other"
end

-- The chart: one bar per refresh (height: its duration; colour: its outcome), with a title each.
local function chart(c)
  local bars = c and c.bars or {}
  if #bars == 0 then return h.p{ class = "muted", "No finished refresh to chart yet." } end
  local W, H, left, bottom, top = 640, 170, 48, 22, 12
  local plot_h = H - bottom - top
  local slot = (W - left - 8) / math.max(#bars, 8)
  local longest = (c.longest_s and c.longest_s > 0) and c.longest_s or 1
  local marks = {}
  for i, b in ipairs(bars) do
    local bh = math.max(2, (b.duration_s or 0) / longest * plot_h)
    local x = left + (i - 1) * slot + slot * 0.15
    marks[#marks + 1] = h.rect{ class = outcome(b.status), x = string.format("%.1f", x),
      y = string.format("%.1f", top + plot_h - bh), width = string.format("%.1f", slot * 0.7),
      height = string.format("%.1f", bh),
      h.title{ string.sub(b.start or "", 1, 16), " UTC · ", b.status or "", " · ", duration(b.duration_s) } }
  end
  return h.figure{
    h.svg{ class = "chart", xmlns = "http://www.w3.org/2000/svg", viewBox = "0 0 " .. W .. " " .. H,
           width = tostring(W), height = tostring(H), role = "img", ["aria-labelledby"] = "chart-title chart-desc",
      h.title{ id = "chart-title", "Refresh durations and outcomes" },
      h.desc{ id = "chart-desc", #bars, " refreshes, oldest on the left; the longest took ", duration(c.longest_s),
              ". Green completed, red failed, grey other." },
      h.line{ class = "axis", x1 = tostring(left), y1 = tostring(top + plot_h), x2 = tostring(W - 4),
              y2 = tostring(top + plot_h) },
      h.line{ class = "axis", x1 = tostring(left), y1 = tostring(top), x2 = tostring(left), y2 = tostring(top + plot_h) },
      h.text{ x = "4", y = tostring(top + 8), duration(c.longest_s) },
      h.text{ x = "4", y = tostring(top + plot_h), "0 s" },
      h.text{ x = tostring(left), y = tostring(H - 6), string.sub(bars[1].start or "", 1, 10) },
      h.text{ x = tostring(W - 4), y = tostring(H - 6), ["text-anchor"] = "end", string.sub(bars[#bars].start or "", 1, 10) },
      marks,
    },
    h.figcaption{ class = "muted", "Height: how long each refresh took. ",
      h.span{ class = "legend legend-ok", "Completed" }, " ", h.span{ class = "legend legend-failed", "Failed" }, " ",
      h.span{ class = "legend legend-other", "Other" } },
  }
end

local function history_table(list)
  local rows = {}
  for _, e in ipairs(list or {}) do
    rows[#rows + 1] = h.tr{
      h.th{ scope = "row", runs.time(e.start or e.created_at) },
      h.td{ e.trigger or h.span{ class = "muted", "Power BI" } },
      h.td{ runs.state(e.status) },
      h.td{ class = "num", duration(e.duration_s) or h.span{ class = "muted", "—" } },
      h.td{ e.error and h.span{ class = "field-error", e.error } or h.span{ class = "muted", "—" } },
    }
  end
  return layout.table{ class = "refreshes", caption = "Refresh history, newest first", hidden_caption = true,
                       rows = rows, empty = "No refresh yet.", "Started", "Trigger", "Status", "Duration", "Error" }
end

local function schedule_section(view)
  local s = view.schedule or {}
  local current = s.schedule
  local options = { h.option{ value = "custom", "Cron (UTC)" } }
  for _, p in ipairs(PRESETS) do
    options[#options + 1] = h.option{ value = p[1], selected = current == p[1], p[2] }
  end
  local is_preset = false
  for _, p in ipairs(PRESETS) do is_preset = is_preset or current == p[1] end
  options[1] = h.option{ value = "custom", selected = current ~= nil and not is_preset, "Cron (UTC)" }
  local next_items = {}
  for _, t in ipairs(view.next_runs or {}) do next_items[#next_items + 1] = h.li{ runs.time(t) } end
  return h.section{ ["aria-labelledby"] = "schedule-heading",
    h.h2{ id = "schedule-heading", "Refresh schedule" },
    current and h.p{ "Refreshes by itself on ", h.code{ current }, " (UTC). Next:" } or
      h.p{ class = "muted", "No schedule: the model is refreshed by hand or by upstream events." },
    #next_items > 0 and h.ol{ class = "next-runs", next_items },
    h.form{ method = "post", action = view.page.path, class = "stack",
      layout.csrf(view),
      h.div{ class = "search-row",
        layout.field("schedule", "Schedule", h.select{ id = "schedule", name = "schedule", options }),
        layout.field("cron", "Cron (UTC)",
          h.input{ type = "text", id = "cron", name = "cron", spellcheck = "false", autocomplete = "off",
                   value = (current and not is_preset) and current or nil, placeholder = "0 6 * * *",
                   ["aria-describedby"] = "cron-hint" },
          "grow"),
      },
      h.p{ class = "hint", id = "cron-hint", "Five fields: minute hour day-of-month month day-of-week, in UTC." },
      h.div{ class = "buttons",
        h.button{ type = "submit", name = "action", value = "schedule", "Set schedule" },
        current and h.button{ type = "submit", name = "action", value = "unschedule", class = "secondary",
                              "Remove schedule" },
      },
    },
  }
end

return function(view)
  local m = view.model
  local active = false
  for _, e in ipairs(m.refreshes or {}) do active = active or runs.active(e.status) end
  local reload = active and view.page.path and not view.error
  return layout.page(view, {
    title = m.name,
    crumbs = { { "Assets", "/assets" } },
    actions = h.form{ method = "post", action = view.page.path,
      layout.csrf(view),
      h.button{ type = "submit", name = "action", value = "refresh", "Refresh now" },
    },
    main = {
      view.error and h.div{ class = "error-summary", role = "alert",
        h.h2{ "That was not done" }, h.p{ h.code{ class = "message", view.error } } },
      m.powerbi_error and h.p{ class = "notice", "Power BI's own history is not shown: ", m.powerbi_error },
      h.section{ ["aria-labelledby"] = "history", ["data-reload-while-active"] = reload and "3" or nil,
        h.h2{ id = "history", "Refresh history" },
        reload and h.p{ class = "muted", role = "status", "A refresh is going on; this page reloads until it ends." },
        chart(view.chart),
        history_table(m.refreshes),
      },
      schedule_section(view),
    },
  })
end

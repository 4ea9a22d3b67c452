-- What the Power BI pages share (web/power_bi.lua, job.lua, jobs.lua, profile_power_bi.lua,
-- settings_power_bi.lua, connect_failed.lua): the link that starts Connect to Power BI, the
-- words for jobs' phases and states, durations.
local html = require("html")
local h = html.tags

local pbi = {}

-- Percent-encodes a query value (RFC 3986 unreserved characters and "/" kept).
local function query_value(s)
  return (string.gsub(s, "[^%w%-%._~/]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

--- GET /powerbi/connect, coming back to return_to (a local path, may carry a #fragment) after
--- Microsoft's consent screen. prompt: nil, "consent", "select_account" or "login".
function pbi.connect_url(return_to, prompt)
  local url = "/powerbi/connect?return_to=" .. query_value(return_to or "/")
  if prompt then url = url .. "&prompt=" .. prompt end
  return url
end

-- The phases each job kind goes through, in order (the kind's own words in core/flow/).
pbi.KIND_PHASES = {
  publish = { "validating", "creating_connection", "creating_model", "binding", "finalizing" },
  update = { "reading", "diffing", "updating", "rebinding", "refreshing" },
  unpublish = { "deleting_model", "deleting_connection", "finalizing" },
}

pbi.KIND_LABELS = {
  publish = "Publish to Power BI",
  ingest = "Import from Power BI",
  refresh = "Refresh",
  push = "Push rows",
  update = "Update semantic model",
  unpublish = "Unpublish",
  drift_check = "Drift check",
  webhook_delivery = "Webhook delivery",
}

--- A job's phase or state as people read it: its name in words, capitalized ("creating_model" ->
--- "Creating model", "queued" -> "Queued"); the kinds name them so that this is all it takes.
local function words(name)
  return (string.gsub(string.gsub(name, "_", " "), "^%l", string.upper))
end

--- A phase's name for people ("creating_model" -> "Creating model").
function pbi.phase_label(phase)
  if not phase then return nil end
  return words(phase)
end

function pbi.kind_label(kind)
  return pbi.KIND_LABELS[kind] or kind
end

--- A badge with the job's state (class state-<state> for its colour).
function pbi.state_badge(state)
  return h.span{ class = { "badge", "state-" .. tostring(state) }, state and words(state) }
end

--- Milliseconds as people read a duration: "0.4 s", "12 s", "2 min 5 s".
function pbi.duration(ms)
  if type(ms) ~= "number" then return nil end
  if ms < 10000 then return string.format("%.1f s", ms / 1000) end
  local s = math.floor(ms / 1000 + 0.5)
  if s < 60 then return string.format("%d s", s) end
  return string.format("%d min %d s", s // 60, s % 60)
end

--- The date and time of a stored timestamp, in a <time> element ("2026-12-06 03:15 UTC").
function pbi.time(ts)
  if not ts then return nil end
  return h.time{ datetime = ts, string.sub(ts, 1, 10), " ", string.sub(ts, 12, 16), " UTC" }
end

--- A button-looking link that starts Connect to Power BI. modal_return (may be nil): where the
--- product page's dialog comes back to instead (pbiport.js uses it when the page is in a dialog).
function pbi.connect_button(label, return_to, modal_return, secondary)
  return h.a{ class = secondary and "button secondary" or "button", href = pbi.connect_url(return_to),
              ["data-modal-href"] = modal_return and pbi.connect_url(modal_return) or nil, label }
end

return pbi

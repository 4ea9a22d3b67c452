-- Small pieces the import and refresh pages share: a time in UTC, a run's state as a badge.
local html = require("html")
local h = html.tags

local runs = {}

--- "2026-11-26T03:04:05.678Z" as <time> showing "2026-11-26 03:04 UTC".
function runs.time(iso)
  if not iso or iso == "" then return h.span{ class = "muted", "—" } end
  return h.time{ datetime = iso, string.sub(iso, 1, 10), " ", string.sub(iso, 12, 16), " UTC" }
end

local STATE_CLASS = {
  succeeded = "badge-ok", Completed = "badge-ok", failed = "badge-warn", Failed = "badge-warn",
  cancelled = "badge-muted", Cancelled = "badge-muted", Disabled = "badge-muted",
  queued = "badge-muted", running = "badge-info", Unknown = "badge-info",
}

--- A state as a badge ("never run" for none).
function runs.state(state)
  if not state or state == "" then return h.span{ class = "muted", "never run" } end
  return h.span{ class = { "badge", STATE_CLASS[state] or "badge-muted" }, state }
end

--- Whether a state means the run goes on.
function runs.active(state)
  return state == "queued" or state == "running" or state == "Unknown" or state == "NotStarted"
end

return runs

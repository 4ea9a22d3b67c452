-- /jobs/{id}: a job's progress through its phases, each with its time, and how it ended; for a
-- publish, Open in Power BI or the error and what to do. The Power BI modal shows #job-panel
-- after Publish (pbiport.js), which also keeps it current by polling /api/jobs/{id}; without
-- JavaScript the page reloads itself every 2 seconds until the job ends.
-- view.job: as GET /api/jobs/{id} (id, kind, state, phase, progress, error = { code, message },
-- result, cancel, created_at, finished_at, phases = [{ phase, started_at, attempt, ms }]) plus
-- queued_ms (from creation to the first phase), title (a publish's model name), port = { id, name,
-- data_product_id } (a publish's port, while it exists), cancellable, cleanup_possible.
-- view.error = { code, message }: why a cancel was refused.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local pbi = require("web.pbi")

local RELOAD_S = 2

-- What to do after a failure, by its code (docs/errors.md); "%s" is the verb of the job's kind
-- ("publish", else "start it"). Actions: "connect" (Connect to Power BI), "retry" (a publish's port
-- page again).
local ADVICE = {
  not_connected = { "Connect to Power BI, then %s again.", "connect" },
  needs_reconnect = { "Connect to Power BI again (your sign-in expired or was revoked), then %s again.", "connect" },
  not_configured = { "An owner of your organization sets up Power BI in Settings ▸ Power BI; then %s again." },
  bad_credentials = { "The organization's Power BI app was refused: an owner checks Settings ▸ Power BI." },
  no_write_role = { "Choose a workspace where you are Contributor, Member or Admin, or ask the workspace's admin "
                    .. "for one of those roles.", "retry" },
  credentials_rejected = { "Check the credentials of the new connection and %s again.", "retry" },
  credentials_missing = { "Type the new connection's credentials and %s again.", "retry" },
  credentials_unreadable = { "Type the new connection's credentials and %s again.", "retry" },
  connection_mismatch = { "Choose one of the connections offered for this port, or create a new one.", "retry" },
  name_taken = { "Choose another semantic model name.", "retry" },
  powerbi_not_found = { "The workspace, the connection or the model is gone in Power BI: choose again.", "retry" },
  powerbi_forbidden = { "Power BI refused: the message names the role, permission or tenant setting that is missing." },
  template_failed = { "An administrator's TMDL template failed: tell an owner of your organization (the message "
                      .. "names the file and line)." },
  port_retired = { "This output port was retired: publish from a port that is in service." },
  time_limit = { "%s again; if it happens again, tell your administrator.", "retry" },
  worker_lost = { "%s again; if it happens again, tell your administrator.", "retry" },
  cancelled = { "Nothing more happens; %s again whenever you like.", "retry" },
}
local DEFAULT_ADVICE = { "Try again; if it fails again, give your administrator the job's id.", "retry" }

-- The advice's text for the job's kind, its first letter upper case.
local function advice_text(advice, job)
  local text = string.format(advice[1], job.kind == "publish" and "publish" or "start it")
  return (string.gsub(text, "^%l", string.upper))
end

local function ended(job)
  return job.state == "succeeded" or job.state == "failed" or job.state == "cancelled"
end

-- The phases shown: the kind's own list, else those the history names, in order.
local function phase_list(job)
  local known = pbi.KIND_PHASES[job.kind]
  if known then return known end
  local list, seen = {}, {}
  for _, e in ipairs(job.phases or {}) do
    if not seen[e.phase] then
      seen[e.phase] = true
      list[#list + 1] = e.phase
    end
  end
  return list
end

local function phase_rows(job)
  local list = phase_list(job)
  local times, attempts = {}, {}
  for _, e in ipairs(job.phases or {}) do
    if e.ms then times[e.phase] = (times[e.phase] or 0) + e.ms end
    attempts[e.phase] = math.max(attempts[e.phase] or 0, e.attempt or 1)
  end
  local at = 0
  for i, p in ipairs(list) do
    if p == job.phase then at = i end
  end
  local rows = {}
  for i, p in ipairs(list) do
    local state
    if job.state == "succeeded" or i < at then
      state = "done"
    elseif i == at then
      state = job.state == "running" and "current" or (job.state == "queued" and "waiting") or job.state
    else
      state = "pending"
    end
    local status = ({ done = "done", current = "in progress", waiting = "waiting to go on", failed = "failed here",
                      cancelled = "stopped here", pending = "not started" })[state]
    rows[#rows + 1] = h.li{ class = { "phase", "phase-" .. state }, ["data-phase"] = p,
                            ["aria-current"] = state == "current" and "step" or nil,
      h.span{ class = "phase-mark", ["aria-hidden"] = "true" },
      h.span{ class = "phase-name", pbi.phase_label(p) },
      h.span{ class = "visually-hidden", ": ", status },
      times[p] and h.span{ class = "phase-time", pbi.duration(times[p]), state == "current" and " so far" or nil },
      (attempts[p] or 1) > 1 and h.span{ class = "badge badge-muted", "attempt ", attempts[p] },
    }
  end
  return h.ol{ class = "phases", rows }
end

local function status_line(job)
  local phase = job.phase and pbi.phase_label(job.phase)
  local text
  if job.state == "queued" then
    text = phase and { "Waiting to go on after ", phase } or "Waiting for a worker to start it"
  elseif job.state == "running" then
    text = phase
  elseif job.state == "succeeded" then
    text = "Done"
  else
    text = phase and { "Stopped in ", phase }
  end
  return h.p{ class = "job-status", role = "status",
    pbi.state_badge(job.state), " ", text,
    job.cancel and not ended(job) and h.span{ class = "muted", " · cancel requested" },
  }
end

local function retry_url(job)
  return job.port and ("/output-ports/" .. job.port.id .. "/power-bi") or nil
end

local function outcome(view)
  local job = view.job
  if job.state == "succeeded" then
    local r = job.result or {}
    return h.div{ class = "job-outcome success",
      r.web_url and h.p{ h.a{ class = "button", href = r.web_url, target = "_blank", rel = "noopener noreferrer",
                              "Open in Power BI", h.span{ class = "visually-hidden", " (opens in a new tab)" } } },
      r.name and h.p{ "Semantic model ", h.strong{ r.name }, " is published",
                      job.port and { " from ", h.a{ href = "/data-products/" .. job.port.data_product_id,
                                                    job.port.name } }, "." },
      r.consumer_data_product_id and h.p{ h.a{ href = "/data-products/" .. r.consumer_data_product_id,
                                               "The model's data product" }, " records it in the catalog." },
    }
  end
  if job.state ~= "failed" and job.state ~= "cancelled" then return nil end
  local e = job.error or {}
  local advice = ADVICE[e.code] or DEFAULT_ADVICE
  local action
  if advice[2] == "connect" then
    action = pbi.connect_button("Connect to Power BI", retry_url(job) or view.page.path)
  elseif advice[2] == "retry" and retry_url(job) then
    action = h.a{ class = "button secondary", href = retry_url(job), "Publish again" }
  end
  local failed = job.state == "failed"
  return h.div{ class = { failed and "error-summary" or "notice", "job-outcome" }, role = failed and "alert" or nil,
    h.h3{ failed and "It failed" or "It was cancelled" },
    e.message and h.p{ class = "message", e.message },
    e.code and h.p{ class = "muted", "Code ", h.code{ e.code } },
    h.p{ h.strong{ "What to do: " }, advice_text(advice, job) },
    action and h.p{ action },
  }
end

local function cancel_form(view)
  local job = view.job
  if not job.cancellable then return nil end
  return h.form{ method = "post", action = view.page.path, class = "buttons cancel-form",
                 ["data-confirm"] = "Cancel this job?",
    layout.csrf(view),
    job.cleanup_possible and h.div{ class = "choice",
      h.input{ type = "checkbox", id = "cancel-cleanup", name = "cleanup", value = "1" },
      h.label{ ["for"] = "cancel-cleanup", "Also remove what it created in Power BI" } },
    h.button{ type = "submit", class = "secondary", "Cancel job" },
  }
end

local function panel(view)
  local job = view.job
  local live = not ended(job)
  return h.section{ id = "job-panel", class = "job-panel", ["aria-labelledby"] = "job-title",
                    ["data-job-id"] = job.id, ["data-job-state"] = job.state, ["data-job-phase"] = job.phase or "",
                    ["data-job-api"] = "/api/jobs/" .. job.id, ["data-job-page"] = "/jobs/" .. job.id,
    h.h2{ id = "job-title", tabindex = "-1", job.title or pbi.kind_label(job.kind) },
    h.p{ class = "muted", pbi.kind_label(job.kind), " · started ", pbi.time(job.created_at),
         job.queued_ms and job.queued_ms >= 1000 and { " · waited ", pbi.duration(job.queued_ms), " for a worker" } },
    status_line(job),
    h.progress{ max = "100", value = tostring(job.progress or 0), ["aria-label"] = "Progress",
                (job.progress or 0), "%" },
    phase_rows(job),
    view.error and h.div{ class = "error-summary", role = "alert", h.p{ class = "message", view.error.message } },
    outcome(view),
    live and h.noscript{ h.p{ class = "muted", "This page reloads itself every ", RELOAD_S, " seconds. ",
                              h.a{ href = "/jobs/" .. job.id, "Reload now" } } },
    cancel_form(view),
  }
end

return function(view)
  local job = view.job
  return layout.page(view, {
    title = pbi.kind_label(job.kind),
    crumbs = { { "Jobs", "/jobs" } },
    -- without JavaScript the page follows the job by reloading itself until it ends
    head = not ended(job) and h.noscript{ h.meta{ ["http-equiv"] = "refresh", content = tostring(RELOAD_S) } },
    main = panel(view),
  })
end

-- /jobs: my jobs, newest first (an owner sees every job of the organization), with their state and
-- phase, and Cancel for those that have not ended.
-- view.jobs: as GET /api/jobs lists them (id, kind, state, phase, progress, error, cancel,
-- created_at, finished_at), each with title (a publish's model name), port, cancellable,
-- cleanup_possible and, for an owner, user_name; view.all: the organization's jobs (an owner);
-- view.next_cursor: the page of older jobs; view.older: this is not the first page;
-- view.error = { code, message }: why a cancel was refused.
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local pbi = require("web.pbi")

local function cancel_form(view, job, label)
  if not job.cancellable then return nil end
  return h.form{ method = "post", action = "/jobs", class = "row-form", ["data-confirm"] = "Cancel this job?",
    layout.csrf(view),
    h.input{ type = "hidden", name = "job_id", value = job.id },
    h.button{ type = "submit", class = "secondary small", "Cancel",
              h.span{ class = "visually-hidden", " ", label } },
  }
end

local function rows(view)
  local out = {}
  for _, job in ipairs(view.jobs or {}) do
    local label = job.title or pbi.kind_label(job.kind)
    out[#out + 1] = h.tr{
      h.th{ scope = "row", h.a{ href = "/jobs/" .. job.id, label },
            job.title and h.div{ class = "muted", pbi.kind_label(job.kind) } },
      h.td{ pbi.state_badge(job.state), job.cancel and job.state ~= "cancelled" and
            h.div{ class = "muted", "cancel requested" } },
      h.td{ job.phase and pbi.phase_label(job.phase) or h.span{ class = "muted", "—" },
            job.state == "running" and h.div{ class = "muted", job.progress, "%" },
            job.error and job.error.code and job.state == "failed" and h.div{ h.code{ job.error.code } } },
      view.all and h.td{ job.user_name or h.span{ class = "muted", "—" } },
      h.td{ pbi.time(job.created_at) },
      h.td{ cancel_form(view, job, label) },
    }
  end
  return out
end

return function(view)
  local body = layout.table{
    caption = view.all and "Every job of your organization, newest first" or "Your jobs, newest first",
    rows = rows(view),
    empty = view.older and "No older jobs." or
      "No jobs yet. A job starts when you publish a port to Power BI (Open in ▸ Power BI Web on a data product).",
    "Job", "State", "Phase", view.all and "User", "Started", h.span{ class = "visually-hidden", "Actions" } }
  return layout.page(view, {
    title = "Jobs",
    main = {
      view.error and h.div{ class = "error-summary", role = "alert", h.h2{ "Not cancelled" },
                            h.p{ class = "message", view.error.message } },
      body,
      (view.next_cursor or view.older) and h.nav{ class = "pager", ["aria-label"] = "More jobs",
        view.older and h.a{ href = "/jobs", "Newest jobs" },
        view.next_cursor and h.a{ href = "/jobs?cursor=" .. view.next_cursor, "Older jobs" } },
    },
  })
end

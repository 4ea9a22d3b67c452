-- The page every failure of a page answers with: view.error = { status, title, code, message }.
-- A 500's message names only the request id; the cause is in pbiport's log.
local html = require("html")
local h = html.tags
local layout = require("web.layout")

local ADVICE = {
  [401] = "Sign in again, then reload the page.",
  [403] = "Ask an owner of your organization if you need to do this.",
  [404] = "The link may be old, or the object belongs to another organization.",
  [503] = "Try again in a moment.",
}

return function(view)
  local e = view.error or {}
  return layout.page(view, {
    title = e.title or "Error",
    main = {
      h.div{ class = "error-summary", role = "alert",
        h.p{ class = "status", "Error ", e.status, e.code and { " · ", h.code{ e.code } } },
        h.p{ class = "message", e.message },
        ADVICE[e.status] and h.p{ ADVICE[e.status] },
      },
      h.p{ h.a{ href = "/", "Back to Data Products" } },
    },
  })
end

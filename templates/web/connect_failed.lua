-- The page a browser lands on when Connect to Power BI did not work out (GET /powerbi/callback
-- failed): what went wrong, Try again, and the way back to the page that started it.
-- view.error = { status, code, message }; view.return_to: that page (a local path).
local html = require("html")
local h = html.tags
local layout = require("web.layout")
local pbi = require("web.pbi")

local ADVICE = {
  consent_declined = "Connect again and accept the permissions pbiport asks for: it publishes to Power BI as you.",
  bad_credentials = "The organization's Power BI app was refused: an owner checks Settings ▸ Power BI.",
  not_configured = "An owner of your organization sets up Power BI in Settings ▸ Power BI first.",
  conflict = "The organization's Power BI settings changed meanwhile: connect again.",
}

return function(view)
  local e = view.error or {}
  return layout.page(view, {
    title = "Power BI is not connected",
    main = {
      h.div{ class = "error-summary", role = "alert",
        h.p{ class = "message", e.message },
        h.p{ class = "muted", "Code ", h.code{ e.code } },
        h.p{ ADVICE[e.code] or "Try again; the sign-in link is valid for a few minutes only." },
      },
      h.div{ class = "buttons",
        pbi.connect_button("Try again", view.return_to),
        h.a{ class = "button secondary", href = view.return_to, "Back" },
      },
    },
  })
end

-- The frame of every page: head (stylesheet, script), skip link, header with the organization,
-- the main navigation and the signed-in user, the page's title, its content and the footer.
--
--   local layout = require("web.layout")
--   return function(view)
--     return layout.page(view, { title = "Data Products", main = { ... } })
--   end
--
-- view.page is filled by pbiport (runtime/page_render.h): path, request_id, csrf_token,
-- user = { name, role, org }, features = { powerbi_web, ingestions }.
local html = require("html")
local h = html.tags

local layout = {}

-- The main navigation: label, link, the paths it stands for, and who sees it.
local NAV = {
  { label = "Data Products", href = "/", prefixes = { "/data-products" } },
  { label = "Assets", href = "/assets", prefixes = { "/assets", "/semantic-models" }, feature = "ingestions" },
  { label = "Push datasets", href = "/push-datasets", prefixes = { "/push-datasets" } },
  { label = "Jobs", href = "/jobs", prefixes = { "/jobs" } },
  { label = "Settings", href = "/settings/power-bi", prefixes = { "/settings" }, owner = true },
}

local function starts(path, prefix)
  return path == prefix or string.sub(path, 1, #prefix + 1) == prefix .. "/"
end

local function is_current(item, path)
  if path == item.href then return true end
  for _, prefix in ipairs(item.prefixes) do
    if starts(path, prefix) then return true end
  end
  return false
end

local function nav(page)
  local user, features, path = page.user, page.features or {}, page.path or ""
  local items = {}
  for _, item in ipairs(NAV) do
    local shown = (not item.owner or user.role == "owner") and (not item.feature or features[item.feature])
    if shown then
      items[#items + 1] = h.li{ h.a{ href = item.href, ["aria-current"] = is_current(item, path) and "page" or nil,
                                     item.label } }
    end
  end
  return h.nav{ class = "site-nav", ["aria-label"] = "Main", h.ul{ items } }
end

local function account(page)
  local user = page.user
  return h.div{ class = "account",
    h.a{ href = "/profile/power-bi", ["aria-current"] = starts(page.path or "", "/profile") and "page" or nil,
         title = "Your profile",
         h.span{ class = "visually-hidden", "Your profile: " },
         h.span{ class = "user-name", user.name },
         h.span{ class = "role", " (", user.role, ")" } },
  }
end

--- A breadcrumb trail: the pages above (label, href) and the current one.
function layout.crumbs(trail, current)
  local items = {}
  for _, c in ipairs(trail) do items[#items + 1] = h.li{ h.a{ href = c[2], c[1] } } end
  items[#items + 1] = h.li{ h.span{ ["aria-current"] = "page", current } }
  return h.nav{ class = "crumbs", ["aria-label"] = "Breadcrumb", h.ol{ items } }
end

--- A data table in its wrapper (which scrolls a wide table instead of the page). t = { caption =
--- content, rows = the body's rows, class = the table's class (optional), hidden_caption = true
--- when the heading above says it already (the caption is then for screen readers only), empty =
--- what the page says instead when there are no rows (optional) }; the list part of t holds the
--- column headings (content; false leaves a column out).
function layout.table(t)
  if t.empty and #t.rows == 0 then return h.p{ class = "empty", t.empty } end
  local heads = {}
  for _, c in ipairs(t) do
    if c then heads[#heads + 1] = h.th{ scope = "col", c } end
  end
  return h.div{ class = "table-wrap", h.table{ class = t.class,
    h.caption{ class = t.hidden_caption and "visually-hidden" or nil, t.caption },
    h.thead{ h.tr{ heads } },
    h.tbody{ t.rows },
  } }
end

--- "1 asset", "3 assets": n and the noun, in the plural but for one.
function layout.count(n, noun)
  return string.format("%d %s%s", n, noun, n == 1 and "" or "s")
end

--- A form field: the label of the control whose id is id, then the control (content: a list
--- may put a hint before it). class: the wrapper's classes beside "field" ("grow").
function layout.field(id, label, control, class)
  return h.div{ class = class and "field " .. class or "field", h.label{ ["for"] = id, label }, control }
end

--- The summary above a form the server refused, when it did (err: its message): what was not
--- done, the message, then more (optional). Its id "form-error" is what the form's fields name
--- in aria-describedby.
function layout.form_error(err, what, more)
  return err and h.div{ class = "error-summary", role = "alert", id = "form-error",
    h.h2{ what },
    h.p{ h.code{ class = "message", err } },
    more,
  }
end

--- A hidden field with the page's CSRF token: every form that posts needs it (forms post to
--- the page's own path; pbiport refuses a post without a valid token with 403).
function layout.csrf(view)
  local token = view.page and view.page.csrf_token
  return h.input{ type = "hidden", name = "csrf_token", value = token or "" }
end

--- The whole page. p = { title = text, main = content, and optional: lead = content under the
--- title, actions = content beside it, crumbs = { { label, href }, ... } (the pages above this
--- one; the page itself ends the trail), head = more elements for <head> (a <noscript> meta
--- refresh) }.
function layout.page(view, p)
  local page = view.page or {}
  local user = page.user
  return html.document{ lang = "en",
    h.head{
      h.meta{ charset = "utf-8" },
      h.meta{ name = "viewport", content = "width=device-width, initial-scale=1" },
      h.title{ p.title, " · pbiport" },
      h.link{ rel = "icon", href = "/static/favicon.svg", type = "image/svg+xml" },
      h.link{ rel = "stylesheet", href = "/static/pbiport.css" },
      h.script{ src = "/static/pbiport.js", defer = true },
      p.head,
    },
    h.body{
      h.a{ class = "skip-link", href = "#main", "Skip to main content" },
      h.header{ class = "site-header",
        h.div{ class = "brand",
          h.a{ href = "/", class = "logo", "pbiport" },
          user and user.org and h.span{ class = "org", h.span{ class = "visually-hidden", "Organization: " }, user.org },
        },
        user and nav(page),
        user and account(page),
      },
      h.main{ id = "main", tabindex = "-1",
        p.crumbs and layout.crumbs(p.crumbs, p.title),
        h.div{ class = "page-title",
          h.h1{ p.title },
          p.actions and h.div{ class = "actions", p.actions },
        },
        p.lead and h.div{ class = "lead", p.lead },
        p.main,
      },
      h.footer{ class = "site-footer",
        h.p{ "pbiport", page.request_id and { " · request ", h.code{ page.request_id } } },
      },
    },
  }
end

return layout

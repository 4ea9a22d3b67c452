-- The entry of every page render (runtime/page_render.c): runs the page's template,
-- web/<name>.lua, with the view and checks that it built its page with html (lua/html.lua),
-- so nothing reaches the browser that escaping did not see or a template did not mark raw.
local html = require("html")

return function(name, view)
  local template = require("web." .. name)
  if type(template) ~= "function" then
    error(string.format("web/%s.lua must return a function(view), not a %s", name, type(template)), 0)
  end
  local out = template(view)
  if not html.is_html(out) then
    error(string.format("web/%s.lua: its function returned a %s, not html (build the page with "
      .. "html.tags, or wrap trusted markup in html.raw)", name, type(out)), 0)
  end
  return html.markup(out)
end

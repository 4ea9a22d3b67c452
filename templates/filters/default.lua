-- The default import filter rule: the integration's include / exclude lists.
--
-- Called once per item with
--   item  = { kind = "workspace" | "semantic_model" | "report", name = "...",
--             workspace = "<workspace name>" (items only), id = "<Power BI id>" }
--   rules = the integration's "filters" object, e.g.
--           { workspaces = { include = { "Sales*" }, exclude = { "*test*" } },
--             semantic_models = { include = {}, exclude = {} }, reports = { ... } }
-- Returns true to import the item. Workspaces are decided first; items of a workspace
-- that was left out are never asked about.
--
-- To write your own rule, copy this file into a folder on PBIPORT_TEMPLATE_PATH under a
-- new name (e.g. filters/prod_only.lua) and set the integration's "filter_rule" to
-- "filters.prod_only". Example: only workspaces whose name ends in -prod, with the
-- lists still applied:
--
--   local filters = require("filters")
--   return function(item, rules)
--     if item.kind == "workspace" and not filters.match("*-prod", item.name) then
--       return false
--     end
--     return filters.allowed(rules[filters.group(item.kind)], item.name)
--   end
local filters = require("filters")

return function(item, rules)
  local group = filters.group(item.kind)
  if group == nil then
    return true
  end
  return filters.allowed(rules[group], item.name)
end

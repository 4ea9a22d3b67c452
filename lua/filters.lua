-- Helpers for import filter rules (templates/filters/*.lua).
--
-- filters.match(pattern, text): '*' matches any run of characters (also none); every
-- other character matches itself, ASCII letters without regard to case. The matcher is
-- the linear two-pointer algorithm (it remembers only the last '*'), so a pattern like
-- "*a*a*a*b" costs at most len(pattern) x len(text) steps, never exponential time.
--
-- filters.allowed(group, name): group is {include = {...}, exclude = {...}} (either list
-- may be missing or empty). An exclude match wins; otherwise a name is allowed when the
-- include list is empty or one of its patterns matches.
local M = {}

local byte, lower = string.byte, string.lower
local STAR = 42

function M.match(pattern, text)
  local p, t = lower(pattern), lower(text)
  local plen, tlen = #p, #t
  local pi, ti, star, mark = 1, 1, 0, 0
  while ti <= tlen do
    local pc = pi <= plen and byte(p, pi) or nil
    if pc == STAR then
      star, mark, pi = pi, ti, pi + 1
    elseif pc ~= nil and pc == byte(t, ti) then
      pi, ti = pi + 1, ti + 1
    elseif star ~= 0 then
      mark = mark + 1
      pi, ti = star + 1, mark
    else
      return false
    end
  end
  while pi <= plen and byte(p, pi) == STAR do
    pi = pi + 1
  end
  return pi > plen
end

local function any(list, name)
  if list == nil then
    return false
  end
  for _, pattern in ipairs(list) do
    if M.match(pattern, name) then
      return true
    end
  end
  return false
end

function M.allowed(group, name)
  if group == nil then
    return true
  end
  name = name or ""
  if any(group.exclude, name) then
    return false
  end
  if group.include == nil or #group.include == 0 then
    return true
  end
  return any(group.include, name)
end

-- The filter group for an item kind: workspace -> "workspaces", semantic_model ->
-- "semantic_models", report -> "reports"; nil for kinds without filters.
local groups = { workspace = "workspaces", semantic_model = "semantic_models", report = "reports" }
function M.group(kind)
  return groups[kind]
end

return M

-- html: build HTML where every value is escaped unless a template says otherwise.
--
--   local html = require("html")
--   local h = html.tags
--   h.p{ class = "note", "Hello ", h.strong{ user.name }, "!" }
--
-- An element is called with one table: string keys are attributes, the array part is the
-- content. Content may be strings and numbers (escaped), what html builds (inserted as is),
-- lists of those (flattened), and nil or false (skipped, so `cond and h.x{...}` works).
-- Trusted markup goes in only through html.raw(text): the one explicit way around escaping.
--
-- Attributes: names are checked; values are escaped and always double-quoted; true writes a
-- boolean attribute, false and nil leave it out, a list (class = {"a", "b"}) is joined with
-- spaces. URL attributes (href, src, action, formaction, ...) keep only relative URLs and
-- http(s) ones; anything else (javascript:, data:, //host) becomes "about:invalid#unsafe-url".
-- Event handler attributes (on...) and style are refused: the pages' Content-Security-Policy
-- runs no inline script or style, so they could only break a page.
--
-- A mistake (an unknown kind of content, a refused attribute) stops the page with an error that
-- names the template's line. A builder right after `return` is a tail call, for which Lua keeps
-- no frame of the template: its error names the line that called the template's function.
--
-- Every builder returns an html value (a table with a locked metatable named
-- "pbiport.html"); tostring(v) or html.text(v) gives its markup.

local html = {}

local RAW = { __name = "pbiport.html", __metatable = "html" }
RAW.__tostring = function(v) return v[1] end
RAW.__concat = function(a, b)
  return html.raw(html.text(a) .. html.text(b))
end

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

--- The text with & < > " ' replaced by character references.
function html.escape(s)
  s = tostring(s)
  if not string.find(s, "[&<>\"']") then
    return s
  end
  return (string.gsub(s, "[&<>\"']", ESCAPES))
end

--- Trusted markup, inserted without escaping. Use it only for text that is markup already.
function html.raw(s)
  return setmetatable({ tostring(s) }, RAW)
end

--- True for a value html built (or html.raw made).
function html.is_html(v)
  return type(v) == "table" and getmetatable(v) == "html"
end

-- level: where error() points, the template's line (1 = add itself; +1 per nested list)
local function add(out, v, where, level)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = html.escape(v)
  elseif t == "number" then
    out[#out + 1] = tostring(v)
  elseif v == nil or v == false then
    return
  elseif t == "table" then
    if getmetatable(v) == "html" then
      out[#out + 1] = v[1]
    else
      local n = 0
      for k in pairs(v) do
        if math.type(k) == "integer" and k > n then n = k end
      end
      for i = 1, n do add(out, v[i], where, level + 1) end
    end
  else
    error(string.format("html: cannot put a %s into %s", t, where), level)
  end
end

--- Markup of a value as a string: strings are escaped, html values kept.
function html.text(v)
  local out = {}
  add(out, v, "text", 3)
  return table.concat(out)
end

--- Content joined into one html value.
function html.join(list, sep)
  local out = {}
  for i, v in ipairs(list) do
    if i > 1 and sep then add(out, sep, "join", 3) end
    add(out, v, "join", 3)
  end
  return html.raw(table.concat(out))
end

local URL_ATTRS = { href = true, src = true, action = true, formaction = true, poster = true, cite = true,
                    ["xlink:href"] = true }
local UNSAFE_URL = "about:invalid#unsafe-url"

--- u when it is relative (/path, path, ?query, #fragment) or http(s); else a harmless URL.
function html.url(u)
  u = tostring(u)
  local lower = string.lower(u)
  if string.sub(lower, 1, 7) == "http://" or string.sub(lower, 1, 8) == "https://" then
    -- no tabs, line breaks or spaces: browsers drop or mend them, and no valid URL has them
    if not string.find(u, "[%c ]") then return u end
    return UNSAFE_URL
  end
  if string.find(u, "[%c\\]") or string.sub(u, 1, 2) == "//" then
    return UNSAFE_URL
  end
  -- a ':' before any '/', '?' or '#' names a scheme
  local first = string.find(u, "[:/?#]")
  if first and string.sub(u, first, first) == ":" then
    return UNSAFE_URL
  end
  return u
end

local VOID = { area = true, base = true, br = true, col = true, embed = true, hr = true, img = true, input = true,
               link = true, meta = true, source = true, track = true, wbr = true }

local function attr_value(name, v)
  if type(v) == "table" and getmetatable(v) ~= "html" then
    local parts = {}
    for _, x in ipairs(v) do
      if x then parts[#parts + 1] = tostring(x) end
    end
    v = table.concat(parts, " ")
  else
    v = tostring(v)
  end
  if URL_ATTRS[name] then v = html.url(v) end
  return html.escape(v)
end

local function element(tag, spec)
  if type(spec) ~= "table" or getmetatable(spec) == "html" then
    error(string.format("html: <%s> takes one table: h.%s{ attr = value, content... }", tag, tag), 3)
  end
  local names, n = {}, 0
  for k in pairs(spec) do
    if type(k) == "string" then
      names[#names + 1] = k
    elseif math.type(k) == "integer" then
      if k > n then n = k end
    else
      error(string.format("html: <%s>: attribute names are strings", tag), 3)
    end
  end
  table.sort(names)
  local out = { "<", tag }
  for _, name in ipairs(names) do
    if not string.find(name, "^[%a_:][%w_:.%-]*$") then
      error(string.format("html: <%s>: invalid attribute name %q", tag, name), 3)
    end
    local lname = string.lower(name)
    if string.sub(lname, 1, 2) == "on" or lname == "style" then
      error(string.format("html: <%s>: attribute %s is not allowed (no inline script or style: "
        .. "use /static files)", tag, name), 3)
    end
    local v = spec[name]
    if v == true then
      out[#out + 1] = " " .. name
    elseif v ~= false and v ~= nil then
      out[#out + 1] = " " .. name .. '="' .. attr_value(lname, v) .. '"'
    end
  end
  out[#out + 1] = ">"
  if VOID[tag] then
    if n > 0 then error(string.format("html: <%s> has no content", tag), 3) end
    return html.raw(table.concat(out))
  end
  if tag == "script" and n > 0 then
    error("html: <script> takes no inline code (the Content-Security-Policy blocks it): use src", 3)
  end
  -- add -> element -> the builder -> the template
  for i = 1, n do add(out, spec[i], "<" .. tag .. ">", 4) end
  out[#out + 1] = "</" .. tag .. ">"
  return html.raw(table.concat(out))
end

--- html.tags.div{...}, html.tags.a{...}: a builder for every element name.
html.tags = setmetatable({}, {
  __index = function(_, tag)
    if type(tag) ~= "string" or not string.find(tag, "^[a-z][a-z0-9]*$") or tag == "style" then
      error(string.format("html: no element %s", tostring(tag)), 2)
    end
    -- not a tail call: error levels in element count this frame
    return function(spec)
      local v = element(tag, spec)
      return v
    end
  end,
})

--- A whole document: "<!DOCTYPE html>" and the <html> element built from spec.
function html.document(spec)
  return html.raw("<!DOCTYPE html>\n" .. element("html", spec)[1])
end

return html

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
-- Every builder returns an html value (a table only html makes); html.markup(v) gives its markup
-- as a string.

local html = {}

-- Every name used below as a local: in the sandbox a global read goes through its environment's
-- __index (a C call), and a page builds hundreds of elements.
local type, tostring, setmetatable, next, ipairs, error = type, tostring, setmetatable, next, ipairs, error
local find, lower, sub, format = string.find, string.lower, string.sub, string.format
local concat, sort = table.concat, table.sort
local mtype = math.type

-- An html value is a table holding its markup under this key, which only this module has: a
-- template cannot make one except through html.raw. (A private key, not a metatable: setting a
-- metatable is a C call in the sandbox, and a page makes hundreds of values.)
local MARK = {}

-- & < > " ' as &amp; &lt; &gt; &quot; &#39; (the same string when it has none), in C: a page
-- escapes hundreds of values, and string.find/gsub with a set run the pattern matcher per byte.
local escape = pbiport.escape_markup

--- The text with & < > " ' replaced by character references.
function html.escape(s)
  return escape(tostring(s))
end

--- Trusted markup, inserted without escaping. Use it only for text that is markup already.
function html.raw(s)
  return { [MARK] = tostring(s) }
end

--- True for a value html built (or html.raw made).
function html.is_html(v)
  return type(v) == "table" and v[MARK] ~= nil
end

--- The markup of an html value (a string); nil for anything else.
function html.markup(v)
  return type(v) == "table" and v[MARK] or nil
end

-- Puts the markup of content v into out after position o; returns the new last position.
-- level: where error() points, the template's line (1 = add itself; +1 per nested list).
local function add(out, o, v, where, level)
  local t = type(v)
  if t == "string" then
    o = o + 1
    out[o] = escape(v)
  elseif t == "number" then
    o = o + 1
    out[o] = tostring(v)
  elseif v == nil or v == false then
    return o
  elseif t == "table" then
    local m = v[MARK]
    if m then
      o = o + 1
      out[o] = m
    else
      local n = 0
      for k in next, v do
        if mtype(k) == "integer" and k > n then n = k end
      end
      for i = 1, n do o = add(out, o, v[i], where, level + 1) end
    end
  else
    error(format("html: cannot put a %s into %s", t, where), level)
  end
  return o
end

--- Markup of a value as a string: strings are escaped, html values kept.
function html.text(v)
  local out = {}
  local o = add(out, 0, v, "text", 3)
  return concat(out, "", 1, o)
end

--- Content joined into one html value.
function html.join(list, sep)
  local out, o = {}, 0
  for i, v in ipairs(list) do
    if i > 1 and sep then o = add(out, o, sep, "join", 3) end
    o = add(out, o, v, "join", 3)
  end
  return { [MARK] = concat(out, "", 1, o) }
end

local URL_ATTRS = { href = true, src = true, action = true, formaction = true, poster = true, cite = true,
                    ["xlink:href"] = true }
local UNSAFE_URL = "about:invalid#unsafe-url"

--- u when it is relative (/path, path, ?query, #fragment) or http(s); else a harmless URL.
function html.url(u)
  u = tostring(u)
  local lower_u = lower(sub(u, 1, 8))
  if sub(lower_u, 1, 7) == "http://" or lower_u == "https://" then
    -- no tabs, line breaks or spaces: browsers drop or mend them, and no valid URL has them
    if not find(u, "[%c ]") then return u end
    return UNSAFE_URL
  end
  if find(u, "[%c\\]") or sub(u, 1, 2) == "//" then
    return UNSAFE_URL
  end
  -- a ':' before any '/', '?' or '#' names a scheme
  local first = find(u, "[:/?#]")
  if first and sub(u, first, first) == ":" then
    return UNSAFE_URL
  end
  return u
end

local VOID = { area = true, base = true, br = true, col = true, embed = true, hr = true, img = true, input = true,
               link = true, meta = true, source = true, track = true, wbr = true }

-- Attribute names seen in this render: name -> its lower case, checked once.
local ATTR_NAMES = {}

-- level 4: attr_name -> element -> the builder -> the template
local function attr_name(tag, name)
  if not find(name, "^[%a_:][%w_:.%-]*$") then
    error(format("html: <%s>: invalid attribute name %q", tag, name), 4)
  end
  local lname = lower(name)
  if sub(lname, 1, 2) == "on" or lname == "style" then
    error(format("html: <%s>: attribute %s is not allowed (no inline script or style: use /static files)",
      tag, name), 4)
  end
  ATTR_NAMES[name] = lname
  return lname
end

local function attr_value(lname, v)
  if type(v) == "table" and v[MARK] == nil then
    local parts = {}
    for _, x in ipairs(v) do
      if x then parts[#parts + 1] = tostring(x) end
    end
    v = concat(parts, " ")
  elseif type(v) == "table" then
    v = v[MARK]
  elseif type(v) ~= "string" then
    v = tostring(v)
  end
  if URL_ATTRS[lname] then v = html.url(v) end
  return escape(v)
end

-- The markup of <tag attrs>content</tag>. open = "<tag", close = "</tag>" (nil: a void
-- element), where = "<tag>" for messages. Error levels: element -> the builder -> the template.
local function element(tag, spec, open, close, where)
  if type(spec) ~= "table" or spec[MARK] then
    error(format("html: <%s> takes one table: h.%s{ attr = value, content... }", tag, tag), 3)
  end
  -- one pass over the table: attribute names (sorted when there are several, so the output
  -- does not depend on hash order) and the highest content index (content may have nil holes)
  local single, names, nn, n = nil, nil, 0, 0
  for k in next, spec do
    if type(k) == "string" then
      nn = nn + 1
      if nn == 1 then
        single = k
      else
        if nn == 2 then names = { single } end
        names[nn] = k
      end
    elseif mtype(k) == "integer" then
      if k > n then n = k end
    else
      error(format("html: <%s>: attribute names are strings", tag), 3)
    end
  end
  if names then sort(names) end
  -- room for a few parts up front: growing a table is an allocation each time
  local out, o = { open, false, false, false, false, false, false, false }, 1
  for i = 1, nn do
    local name = names and names[i] or single
    local lname = ATTR_NAMES[name] or attr_name(tag, name)
    local v = spec[name]
    if v == true then
      o = o + 1
      out[o] = " " .. name
    elseif v then
      o = o + 1
      out[o] = " " .. name .. '="' .. attr_value(lname, v) .. '"'
    end
  end
  o = o + 1
  out[o] = ">"
  if not close then
    if n > 0 then error(format("html: <%s> has no content", tag), 3) end
    return { [MARK] = concat(out, "", 1, o) }
  end
  if tag == "script" and n > 0 then
    error("html: <script> takes no inline code (the Content-Security-Policy blocks it): use src", 3)
  end
  for i = 1, n do
    local c = spec[i]
    local t = type(c)
    local m = t == "table" and c[MARK]
    if t == "string" then
      o = o + 1
      out[o] = escape(c)
    elseif m then
      o = o + 1
      out[o] = m
    elseif c then
      -- add -> element -> the builder -> the template
      o = add(out, o, c, where, 4)
    end
  end
  o = o + 1
  out[o] = close
  return { [MARK] = concat(out, "", 1, o) }
end

--- html.tags.div{...}, html.tags.a{...}: a builder for every element name.
html.tags = setmetatable({}, {
  __index = function(tags, tag)
    if type(tag) ~= "string" or not find(tag, "^[a-z][a-z0-9]*$") or tag == "style" then
      error(format("html: no element %s", tostring(tag)), 2)
    end
    local open, close, where = "<" .. tag, not VOID[tag] and "</" .. tag .. ">" or nil, "<" .. tag .. ">"
    -- not a tail call: error levels in element count this frame
    local function builder(spec)
      local v = element(tag, spec, open, close, where)
      return v
    end
    tags[tag] = builder
    return builder
  end,
})

--- A whole document: "<!DOCTYPE html>" and the <html> element built from spec.
function html.document(spec)
  local v = element("html", spec, "<html", "</html>", "<html>")
  return { [MARK] = "<!DOCTYPE html>\n" .. v[MARK] }
end

return html

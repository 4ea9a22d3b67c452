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
--
-- The per-element work (escaping, attribute rules, flattening content) is done in C by the
-- functions runtime/page_html.c gives every page sandbox (pbiport.html_*): in Lua it cost a dozen
-- library calls and half a dozen allocations per element, and a page builds hundreds.

local html = {}

-- Every name used below as a local: in the sandbox a global read goes through its environment's
-- __index (a C call).
local type, tostring, setmetatable, rawget, ipairs, error = type, tostring, setmetatable, rawget, ipairs, error
local find, format = string.find, string.format
local escape, url, element, content = pbiport.html_escape, pbiport.html_url, pbiport.html_element,
  pbiport.html_content

-- An html value is a table holding its markup under this key, which only this module has: a
-- template cannot make one except through html.raw. (A private key, not a metatable: setting a
-- metatable is a C call in the sandbox, and a page makes hundreds of values.) The markup is read
-- raw, here and in C.
local MARK = {}

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
  return type(v) == "table" and rawget(v, MARK) ~= nil
end

--- The markup of an html value (a string); nil for anything else.
function html.markup(v)
  return type(v) == "table" and rawget(v, MARK) or nil
end

--- Markup of a value as a string: strings are escaped, html values kept.
function html.text(v)
  local m = content(v, MARK, "text")
  return m
end

--- Content joined into one html value.
function html.join(list, sep)
  local parts = {}
  for i, v in ipairs(list) do
    if i > 1 and sep then parts[#parts + 1] = sep end
    parts[#parts + 1] = v
  end
  local m = content(parts, MARK, "join")
  return { [MARK] = m }
end

--- u when it is relative (/path, path, ?query, #fragment) or http(s); else a harmless URL.
function html.url(u)
  return url(u)
end

local VOID = { area = true, base = true, br = true, col = true, embed = true, hr = true, img = true, input = true,
               link = true, meta = true, source = true, track = true, wbr = true }

--- html.tags.div{...}, html.tags.a{...}: a builder for every element name.
html.tags = setmetatable({}, {
  __index = function(tags, tag)
    if type(tag) ~= "string" or not find(tag, "^[a-z][a-z0-9]*$") or tag == "style" then
      error(format("html: no element %s", tostring(tag)), 2)
    end
    local open, close = "<" .. tag, not VOID[tag] and "</" .. tag .. ">" or nil
    -- not a tail call: error levels in element count this frame
    local function builder(spec)
      local v = element(spec, tag, open, close, MARK)
      return v
    end
    tags[tag] = builder
    return builder
  end,
})

--- A whole document: "<!DOCTYPE html>" and the <html> element built from spec.
function html.document(spec)
  local v = element(spec, "html", "<html", "</html>", MARK)
  return { [MARK] = "<!DOCTYPE html>\n" .. v[MARK] }
end

return html

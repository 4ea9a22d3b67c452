-- tmdl: helpers for writing TMDL and Power Query M text. Every escaping rule of
-- /work/shared/reference/tmdl.md (sections 2 and 10) lives here and only here; the
-- templates under templates/tmdl/ call these functions and never quote by hand.
-- Errors are raised at the caller's level so messages name the template line.

local M = {}

local find, gsub, format, byte, rep, sub, lower, upper, match =
	string.find, string.gsub, string.format, string.byte, string.rep, string.sub,
	string.lower, string.upper, string.match
local concat = table.concat
local type, error, setmetatable, ipairs, tonumber, tostring = type, error, setmetatable, ipairs,
	tonumber, tostring
local mtype, huge = math.type, math.huge
local uuid, join_lines = pbiport.uuid, pbiport.join_lines

local PLAIN = "^[A-Za-z_][A-Za-z0-9_]*$"

-- Whether byte b (may be nil) is ASCII white space; cheaper than an unanchored "%s$".
local function is_space(b)
	return b == 32 or (b ~= nil and b >= 9 and b <= 13)
end

local function shown(s)
	-- A name as shown in an error message: control characters made visible.
	return (gsub(s, "%c", function(c) return format("\\x%02X", byte(c)) end))
end

local function check_name(s, what, level)
	if type(s) ~= "string" or s == "" then
		error(what .. " is empty", level + 1)
	end
	if find(s, "%c") then
		error(what .. " '" .. shown(s) .. "' contains a control character", level + 1)
	end
	if not utf8.len(s) then
		error(what .. " '" .. shown(s) .. "' is not valid UTF-8", level + 1)
	end
end

-- Results of quote_name and text_value by input: models repeat the same column names and
-- format strings in table after table, and a table lookup is cheaper than the patterns.
-- Only successful results are kept, so errors still name the calling template line.
local quoted, texts = {}, {}

-- An object name: bare when ^[A-Za-z_][A-Za-z0-9_]*$, else in single quotes with ' doubled.
-- Control characters cannot be written in TMDL's line syntax: they are an error.
function M.quote_name(s)
	local q = quoted[s]
	if q then
		return q
	end
	if type(s) == "string" and find(s, PLAIN) then
		quoted[s] = s
		return s
	end
	check_name(s, "name", 2)
	q = "'" .. gsub(s, "'", "''") .. "'"
	quoted[s] = q
	return q
end

-- A fully qualified column reference: Table.Column with each part quoted as needed.
function M.column_ref(table_name, column_name)
	return M.quote_name(table_name) .. "." .. M.quote_name(column_name)
end

-- A number as the shortest text that reads back to the same value, as JSON encoders write
-- it (2.002, not the 2.0019999999999998 of 17 digits; Lua's own tostring keeps only 14
-- digits and can change the value). Integers as they are; NaN and infinities are errors.
function M.number(x)
	if type(x) ~= "number" then
		error("number expected, got " .. type(x), 2)
	end
	if mtype(x) == "integer" then
		return format("%d", x)
	end
	if x ~= x or x == huge or x == -huge then
		error("number " .. tostring(x) .. " cannot be written (not finite)", 2)
	end
	local t = format("%.15g", x)
	if tonumber(t) ~= x then
		t = format("%.16g", x)
		if tonumber(t) ~= x then
			t = format("%.17g", x)
		end
	end
	return t
end

-- A ':' property text value (tmdl.md 2.4): unquoted unless empty, with leading or
-- trailing blanks, or starting with a double quote; then "..." with " doubled.
-- Line breaks and other control characters cannot be carried: error. Numbers are
-- written by M.number.
function M.text_value(s)
	local t = texts[s]
	if t then
		return t
	end
	if type(s) == "string" and find(s, "^[%w_]+$") then
		texts[s] = s
		return s
	end
	if type(s) == "number" then
		return M.number(s)
	end
	if type(s) ~= "string" then
		error("text value must be a string, not " .. type(s), 2)
	end
	if find(s, "%c") then
		error("text value '" .. shown(s) .. "' contains a line break or control character", 2)
	end
	t = s
	if s == "" or is_space(byte(s, 1)) or is_space(byte(s, -1)) or byte(s, 1) == 34 then
		t = '"' .. gsub(s, '"', '""') .. '"'
	end
	texts[s] = t
	return t
end

-- The lines of text (split on LF) in a list; plain finds, so long texts stay linear.
local function split_lines(text)
	local out, pos = {}, 1
	while true do
		local nl = find(text, "\n", pos, true)
		if not nl then
			out[#out + 1] = sub(text, pos)
			return out
		end
		out[#out + 1] = sub(text, pos, nl - 1)
		pos = nl + 1
	end
end

-- Description lines ("/// text"), one per line of the text; CR removed, other
-- control characters become spaces, empty lines are "/// ". nil or "" gives {}.
function M.description_lines(text)
	local out = {}
	if text == nil or text == "" then
		return out
	end
	text = gsub(gsub(text, "\r", ""), "[\0-\8\11-\31\127]", " ")
	local last = #text
	while last > 0 and is_space(byte(text, last)) do
		last = last - 1
	end
	if last == 0 then
		return out
	end
	for i, line in ipairs(split_lines(sub(text, 1, last))) do
		out[i] = "/// " .. line
	end
	return out
end

local M_CONTROL = { ["\r"] = "#(cr)", ["\n"] = "#(lf)", ["\t"] = "#(tab)", ['"'] = '""' }

-- Results of m_string and m_ident by input: every table's partition names the same
-- database and schema (only successful results are kept, as for quote_name).
local m_strings, m_idents = {}, {}

-- A Power Query M text literal: " doubled, #( written #(#)(, control characters as
-- #(cr) #(lf) #(tab) or #(hhhh).
function M.m_string(s)
	local m = m_strings[s]
	if m then
		return m
	end
	if type(s) ~= "string" then
		error("M text must be a string, not " .. type(s), 2)
	end
	m = gsub(s, "#%(", "#(#)(")
	m = gsub(m, '[%c"]', function(c)
		return M_CONTROL[c] or format("#(%04X)", byte(c))
	end)
	m = '"' .. m .. '"'
	m_strings[s] = m
	return m
end

local M_KEYWORDS = {}
for w in ("and as catch each else error false if in is let meta not null or otherwise " ..
	"section shared then true try type"):gmatch("%S+") do
	M_KEYWORDS[w] = true
end

-- A Power Query M identifier: bare when plain and not a keyword, else #"...".
function M.m_ident(s)
	local m = m_idents[s]
	if m then
		return m
	end
	check_name(s, "M identifier", 2)
	if find(s, PLAIN) and not M_KEYWORDS[s] then
		m = s
	else
		m = "#" .. M.m_string(s)
	end
	m_idents[s] = m
	return m
end

-- A JSON string (for annotation values such as PBI_QueryOrder).
function M.json_string(s)
	return '"' .. gsub(s, '[%c"\\]', function(c)
		if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
		return format("\\u%04x", byte(c))
	end) .. '"'
end

-- Device names Windows reserves in every folder, in any case and with any extension
-- (learn.microsoft.com/windows/win32/fileio/naming-a-file): a file "CON.tmdl" cannot be
-- created or opened there.
local RESERVED = { CON = true, PRN = true, AUX = true, NUL = true, ["CONIN$"] = true,
	["CONOUT$"] = true }
for _, digit in ipairs({ "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
	"\u{B9}", "\u{B2}", "\u{B3}" }) do
	RESERVED["COM" .. digit], RESERVED["LPT" .. digit] = true, true
end

-- Longest table file name (without ".tmdl"), in bytes. File systems allow 255 bytes (ext4)
-- or 255 UTF-16 units (NTFS) per name, and Windows tools without long-path support 260
-- characters per path: a model folder must fit below a project folder of its own.
local FILE_STEM_MAX = 100

-- The file name of a table file: the table name with / \ : * ? " < > | and control
-- characters replaced by '_', trailing dots and spaces replaced by '_' (Windows drops
-- them), '_' after a reserved device name (CON -> CON_), and a name longer than
-- FILE_STEM_MAX bytes cut on a character boundary and ended with "~" and 8 hex digits of
-- a hash of the whole name, so long names that share their start stay apart. Only the file
-- name changes: the table keeps its name inside the file. Uniqueness is the caller's job
-- (see unique_file_names).
function M.file_name(name)
	if #name <= FILE_STEM_MAX and find(name, "^[%w_%-]+$") then
		-- the common name (letters, digits, _ and -): only a reserved device name changes
		return RESERVED[upper(name)] and name .. "_" or name
	end
	local s = gsub(name, '[/\\:%*%?"<>|%c]', "_")
	s = gsub(s, "[%. ]+$", function(tail) return rep("_", #tail) end)
	if s == "" then
		s = "_"
	end
	local base = match(s, "^[^%.]*")
	if RESERVED[upper((gsub(base, " +$", "")))] then
		s = base .. "_" .. sub(s, #base + 1)
	end
	if #s > FILE_STEM_MAX then
		local cut = FILE_STEM_MAX - 9
		while cut > 0 and (byte(s, cut + 1) or 0) >= 0x80 and (byte(s, cut + 1) or 0) < 0xC0 do
			cut = cut - 1   -- do not split a UTF-8 sequence
		end
		s = sub(s, 1, cut) .. "~" .. sub(uuid("table file", name), 1, 8)
	end
	return s
end

-- Assigns each item a file name unique as the file system may compare them: by `fold`
-- (default string.lower; main.lua passes ctx.names.key, which also folds non-ASCII case and
-- Unicode normalization, as NTFS and APFS do). The second "A" and an "a" become "A (2)",
-- "a (3)" in input order.
function M.unique_file_names(names, fold)
	fold = fold or lower
	local seen, out = {}, {}
	for i, name in ipairs(names) do
		local base = M.file_name(name)
		local candidate, n = base, 1
		while seen[fold(candidate)] do
			n = n + 1
			candidate = base .. " (" .. n .. ")"
		end
		seen[fold(candidate)] = true
		out[i] = candidate
	end
	return out
end

-- "id", "key", "customer_id", "order key", "CustomerId", "CustomerKey". Only the last
-- four characters are examined: unanchored patterns over whole names are slow.
local function looks_like_key(name)
	local tail = sub(name, -4)
	local l = lower(tail)
	if #name <= 3 then
		return l == "id" or l == "key"
	end
	return find(l, "[_%s%-]id$") ~= nil or find(l, "^[_%s%-]key$") ~= nil
		or find(tail, "%lI[Dd]$") ~= nil or find(tail, "^%lKey$") ~= nil
end

local SUMMARIZATION = { "SummarizationSetBy", "Automatic" }
local GENERAL_NUMBER = { "PBI_FormatHint", '{"isGeneralNumber":true}' }
local DATE_ONLY = { "UnderlyingDateTimeDataType", "Date" }
local TIME_ONLY = { "UnderlyingDateTimeDataType", "Time" }

-- How a contract column is typed in TMDL (tmdl.md section 4 mapping table).
-- col: { name, logical_type, precision, scale, primary_key }. Returns
-- { data_type, format_string (or nil), summarize_by, annotations = { {name, value}... } }.
local function compute_type(lt, p, s, key)
	local t = { annotations = { SUMMARIZATION } }
	if lt == "integer" then
		t.data_type, t.format_string = "int64", "0"
		t.summarize_by = key and "none" or "sum"
	elseif lt == "number" then
		if s == 0 and p and p <= 18 then
			t.data_type, t.format_string = "int64", "0"
		elseif s and s >= 1 and s <= 4 then
			t.data_type, t.format_string = "decimal", "#,0." .. rep("0", s)
		else
			t.data_type = "double"
			t.annotations[2] = GENERAL_NUMBER
		end
		t.summarize_by = key and "none" or "sum"
	elseif lt == "boolean" then
		t.data_type, t.summarize_by = "boolean", "none"
	elseif lt == "date" then
		t.data_type, t.format_string, t.summarize_by = "dateTime", "Long Date", "none"
		t.annotations[2] = DATE_ONLY
	elseif lt == "timestamp" then
		t.data_type, t.format_string, t.summarize_by = "dateTime", "General Date", "none"
	elseif lt == "time" then
		t.data_type, t.format_string, t.summarize_by = "dateTime", "Long Time", "none"
		t.annotations[2] = TIME_ONLY
	else
		-- string, and object/array flattened to JSON text by the contract reader
		t.data_type, t.summarize_by = "string", "none"
	end
	return t
end

-- Results by logical type / precision / scale / key: big models repeat a few shapes;
-- looks_like_key by column name (the same names recur in table after table); logical types
-- in lower case by their text.
local type_cache, key_names, lower_types = {}, {}, {}

-- The result is shared by every column of the same shape: copy it before changing it.
function M.column_type(col)
	local lt = col.logical_type
	if lt then
		local l = lower_types[lt]
		if not l then
			l = lower(lt)
			lower_types[lt] = l
		end
		lt = l
	else
		lt = "string"
	end
	local key = col.primary_key and true or false
	if not key then
		local name = col.name or ""
		key = key_names[name]
		if key == nil then
			key = looks_like_key(name)
			key_names[name] = key
		end
	end
	local p, s = col.precision or -1, col.scale or -1
	local by_p = type_cache[lt]
	if not by_p then by_p = {}; type_cache[lt] = by_p end
	local by_s = by_p[p]
	if not by_s then by_s = {}; by_p[p] = by_s end
	local by_key = by_s[s]
	if not by_key then by_key = {}; by_s[s] = by_key end
	local t = by_key[key]
	if not t then
		t = compute_type(lt, col.precision, col.scale, key)
		by_key[key] = t
	end
	return t
end

-- A deterministic lineage tag: UUIDv5 layout over the contract id and an object path.
-- pbiport.uuid joins its arguments with NUL bytes itself: no joined string is built.
function M.lineage_tag(contract_id, ...)
	return uuid(contract_id or "", ...)
end

-- Title Case for names: "order_line id" -> "Order Line Id" (used by docs/examples).
function M.title_case(s)
	s = gsub(s, "[_%s]+", " ")
	return (gsub(s, "(%a)([%w']*)", function(first, rest) return upper(first) .. lower(rest) end))
end

-- Writer: collects lines at a tab depth and joins them with LF, ending in one newline.
local TABS = {}
for i = 0, 32 do
	TABS[i] = rep("\t", i)
end

local Writer = {}
Writer.__index = Writer

function M.writer()
	return setmetatable({ n = 0 }, Writer)
end

function Writer:line(depth, s)
	local n = self.n + 1
	self[n] = TABS[depth] .. s
	self.n = n
end

function Writer:blank()
	local n = self.n + 1
	self[n] = ""
	self.n = n
end

-- "name: value" with value written by text_value.
function Writer:prop(depth, name, value)
	self:line(depth, name .. ": " .. M.text_value(value))
end

-- "name: value" with value already in TMDL form (enums, numbers, references); a Lua
-- number is written by M.number.
function Writer:raw_prop(depth, name, value)
	if type(value) == "number" then
		value = M.number(value)
	end
	self:line(depth, name .. ": " .. value)
end

-- Appends one line that already carries its indentation (the cheap path for hot loops).
function Writer:add(s)
	local n = self.n + 1
	self[n] = s
	self.n = n
end

-- "\t\t/// " and "\n\t\t/// " by depth, built once.
local DESC_PREFIX, DESC_BREAK = {}, {}
for i = 0, 32 do
	DESC_PREFIX[i] = TABS[i] .. "/// "
	DESC_BREAK[i] = "\n" .. TABS[i] .. "/// "
end

-- The /// lines of a description at a tab depth, each followed by LF ("" for none).
function M.description_text(depth, text)
	if text == nil or text == "" then
		return ""
	end
	-- Common case (only LF breaks, nothing to trim), same result as the general path below,
	-- in one pass and one new string (join_lines: nil when text has a control character
	-- other than LF, which the general path turns into a space or drops, or ends in white
	-- space, which it trims: the other white space bytes are control characters).
	local d = join_lines(text, DESC_PREFIX[depth], DESC_BREAK[depth], "\n")
	if d then
		return d
	end
	local lines = M.description_lines(text)
	if #lines == 0 then
		return ""
	end
	return TABS[depth] .. concat(lines, "\n" .. TABS[depth]) .. "\n"
end

function Writer:description(depth, text)
	local d = M.description_text(depth, text)
	if d ~= "" then
		self:add(sub(d, 1, -2))
	end
end

-- "\n\t\t..." by depth, built once.
local LINE_BREAK = {}
for i = 0, 32 do
	LINE_BREAK[i] = "\n" .. TABS[i]
end

-- A multi-line expression body: each line of text at depth (blank lines kept empty).
function Writer:expression(depth, text)
	-- Common case (no blank line, nothing but LF breaks): the indented lines as one entry
	-- made in one pass (join_lines), which Writer:text writes as the lines one by one.
	if text ~= "" and byte(text, 1) ~= 10 and not find(text, "\n\n", 1, true) then
		local s = join_lines(text, TABS[depth], LINE_BREAK[depth], "")
		if s then
			self:add(s)
			return
		end
	end
	for _, l in ipairs(split_lines(text)) do
		if l == "" then self:blank() else self:line(depth, l) end
	end
end

function Writer:annotation(depth, name, value)
	self:line(depth, "annotation " .. M.quote_name(name) .. " = " .. value)
end

-- The annotation that marks an object as pbiport's (core/lang/model_diff.h): an update of a
-- published model compares, replaces and removes the objects that carry it and keeps every
-- other one as the analysts left it.
M.GENERATED = "PBIPORT_Generated"

-- "annotation PBIPORT_Generated = true" at depth.
function Writer:generated(depth)
	self:annotation(depth, M.GENERATED, "true")
end

function Writer:text()
	local n = self.n
	while n > 0 and self[n] == "" do
		n = n - 1
	end
	if n == 0 then
		return "\n"
	end
	-- the final LF as the separator before an empty last item: one copy of the text, not two
	local after = self[n + 1]
	self[n + 1] = ""
	local s = concat(self, "\n", 1, n + 1)
	self[n + 1] = after
	return s
end

return M

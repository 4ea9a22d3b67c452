-- source_json: a source description (templates/tmdl/sources/<type>.lua, docs/templates.md
-- "Sources") as JSON text, which is how pbiport's C side reads it (core/lang/sources.c):
-- what Fabric calls the connection, the server fields it needs, the credential kinds, the
-- storage modes. The description's functions (the partition M, the type mapping) stay Lua's
-- own and are left out; everything else must be text, numbers, booleans or tables of them.
local tmdl = require "tmdl"

local type, error, pairs, ipairs, tostring = type, error, pairs, ipairs, tostring
local concat, sort = table.concat, table.sort
local format = string.format

local MAX_DEPTH = 8

local encode

-- A table with keys 1..n only is a list; one with text keys only is an object.
local function encode_table(t, depth, out, where)
	if depth > MAX_DEPTH then
		error(where .. ": nested deeper than " .. MAX_DEPTH .. " levels", 0)
	end
	local n, keys = #t, {}
	for k in pairs(t) do
		if type(k) == "string" then
			keys[#keys + 1] = k
		elseif not (math.type(k) == "integer" and k >= 1 and k <= n) then
			error(where .. ": a key of type " .. type(k) .. " (keys are names, or 1..n in a list)", 0)
		end
	end
	if n > 0 and #keys > 0 then
		error(where .. ": a table that is both a list and a record", 0)
	end
	if n > 0 or #keys == 0 then
		out[#out + 1] = "["
		for i = 1, n do
			if i > 1 then out[#out + 1] = "," end
			encode(t[i], depth + 1, out, where .. "[" .. i .. "]")
		end
		out[#out + 1] = "]"
		return
	end
	sort(keys)
	out[#out + 1] = "{"
	local first = true
	for _, k in ipairs(keys) do
		local v = t[k]
		if type(v) ~= "function" then   -- the M writer and type mapping are Lua's own
			if not first then out[#out + 1] = "," end
			first = false
			out[#out + 1] = tmdl.json_string(k)
			out[#out + 1] = ":"
			encode(v, depth + 1, out, where .. "." .. k)
		end
	end
	out[#out + 1] = "}"
end

encode = function(v, depth, out, where)
	local tv = type(v)
	if tv == "string" then
		out[#out + 1] = tmdl.json_string(v)
	elseif tv == "boolean" then
		out[#out + 1] = v and "true" or "false"
	elseif tv == "number" then
		out[#out + 1] = tmdl.number(v)
	elseif tv == "table" then
		encode_table(v, depth, out, where)
	else
		error(format("%s: a %s cannot be part of a source description", where, tostring(tv)), 0)
	end
end

return function(type_name)
	local d = require("sources." .. type_name)
	if type(d) ~= "table" then
		error("sources/" .. type_name .. ".lua must return a table (the source description), not a "
			.. type(d), 0)
	end
	local out = {}
	encode(d, 1, out, "sources/" .. type_name .. ".lua")
	return concat(out)
end

-- main: the entry template. Receives ctx = { contract, target, options, names } and returns
-- { [path] = text } for a complete TMDL definition: definition.pbism and definition/...
-- It first builds a view model (names from naming.lua, types from the source's description
-- (templates/tmdl/sources/<type>.lua) or tmdl.column_type, lineage tags) that the per-file
-- templates render.
local tmdl = require "tmdl"
local naming = require "naming"

local lower, format = string.lower, string.format
local type, error, ipairs, pcall, tostring = type, error, ipairs, pcall, tostring

local function must_be_name(v, what)
	if type(v) ~= "string" or v == "" then
		error(format("naming.%s returned %s, expected a non-empty string", what, type(v)), 3)
	end
	return v
end

-- A name as echoed in a message: its first 40 characters, so the message keeps its cause.
local function shown(name)
	local cut = utf8.offset(name, 41)
	return cut and cut <= #name and (name:sub(1, cut - 1) .. "...") or name
end

-- Power BI compares object names by ctx.names.key (without case, after Unicode
-- normalization) and accepts at most ctx.names.max_length characters; a renamed table or
-- column (naming.lua) is checked here the way the contract reader checks the originals.
local SAME = " (Power BI compares names without case and after Unicode normalization)"

local function check_length(ctx, name, what)
	if #name <= ctx.names.max_length then
		return   -- no more characters than bytes: the common case needs no count
	end
	local n = ctx.names.length(name)
	if n > ctx.names.max_length then
		error(format("%s name of %d characters; Power BI allows at most %d ('%s')", what, n,
			ctx.names.max_length, shown(name)), 0)
	end
end

-- A column's type by the source's mapping; its error (a type a Power BI model cannot hold)
-- names the table too.
local function typed(column_type, cc, tname)
	local ok, t = pcall(column_type, cc)
	if not ok then
		error(format("table '%s': %s", shown(tname), tostring(t)), 0)
	end
	return t
end

local function build(ctx)
	local c, target = ctx.contract, ctx.target
	local key = ctx.names.key
	local id = c.id or c.name or ""
	local source = require("sources." .. target.type)
	local column_type = source.column_type or tmdl.column_type
	local model = {
		contract = c,
		target = target,
		source = source,
		mode = ctx.options.storage_mode,
		culture = "en-US",
		tables = {},
		relationships = {},
		parameters = {},
	}
	local queries = {}   -- query names by key: tables and parameters share one namespace
	for _, p in ipairs(source.parameters or {}) do
		-- a field's value, or one the description computes from the target (host:port)
		local value
		if p.value then value = p.value(target) else value = target[p.field] end
		if type(value) ~= "string" then
			error(format("sources/%s.lua: parameter %s has no value (field '%s')", target.type, p.name,
				tostring(p.field)), 0)
		end
		model.parameters[#model.parameters + 1] = {
			name = p.name,
			value = value,
			description = p.description,
			lineage_tag = tmdl.lineage_tag(id, "expression", p.name),
		}
		queries[key(p.name)] = p.name
	end

	local by_source = {}
	for _, ct in ipairs(c.tables or {}) do
		local name = must_be_name(naming.table_name(ct, ctx), "table_name")
		check_length(ctx, name, "table")
		local k = key(name)
		if queries[k] then
			error(format("table name '%s' is the same name as '%s'" .. SAME, shown(name),
				shown(queries[k])), 0)
		end
		queries[k] = name
		local nkeys = 0
		for _, cc in ipairs(ct.columns or {}) do
			if cc.primary_key then nkeys = nkeys + 1 end
		end
		local t = {
			name = name,
			source = ct,
			source_name = ct.physical_name or ct.name,
			kind = ct.physical_type == "view" and "View" or "Table",
			mode = ct.storage_mode or model.mode,
			description = naming.table_description(ct, ctx),
			lineage_tag = tmdl.lineage_tag(id, "table", ct.name),
			columns = {},
			column_by_source = {},
		}
		local seen = {}
		for _, cc in ipairs(ct.columns or {}) do
			local cname = must_be_name(naming.column_name(cc, ct, ctx), "column_name")
			local folded = key(cname)
			if seen[folded] then
				error(format("table '%s': column '%s' is the same name as '%s'" .. SAME, shown(name),
					shown(cname), shown(seen[folded])), 0)
			end
			check_length(ctx, cname, "column")
			seen[folded] = cname
			local col = {
				name = cname,
				source = cc,
				source_column = cc.physical_name or cc.name,
				hidden = naming.column_hidden(cc, ct, ctx) and true or false,
				-- Power BI allows one key column per table: composite keys mark none.
				is_key = (cc.primary_key and nkeys == 1) and true or false,
				not_null = (cc.required or (cc.primary_key and nkeys == 1)) and true or false,
				type = typed(column_type, cc, ct.name),
				description = naming.column_description(cc, ct, ctx),
				lineage_tag = tmdl.lineage_tag(id, "column", ct.name, cc.name),
			}
			t.columns[#t.columns + 1] = col
			t.column_by_source[cc.name] = col
		end
		model.tables[#model.tables + 1] = t
		by_source[ct.name] = t
	end

	local names = {}
	for i, t in ipairs(model.tables) do names[i] = t.name end
	for i, f in ipairs(tmdl.unique_file_names(names, key)) do model.tables[i].file = f end

	for _, r in ipairs(c.relationships or {}) do
		local function side(tname, cname)
			local t = by_source[tname]
			if not t then
				error(format("relationship %s.%s -> %s.%s: no table '%s' in the contract",
					shown(r.from_table), shown(r.from_column), shown(r.to_table), shown(r.to_column),
					shown(tname)), 0)
			end
			local col = t.column_by_source[cname]
			if not col then
				error(format("relationship %s.%s -> %s.%s: table '%s' has no column '%s'",
					shown(r.from_table), shown(r.from_column), shown(r.to_table), shown(r.to_column),
					shown(tname), shown(cname)), 0)
			end
			return t, col
		end
		local ft, fc = side(r.from_table, r.from_column)
		local tt, tc = side(r.to_table, r.to_column)
		model.relationships[#model.relationships + 1] = {
			name = tmdl.lineage_tag(id, "relationship", r.from_table, r.from_column,
				r.to_table, r.to_column),
			from_table = ft.name, from_column = fc.name,
			to_table = tt.name, to_column = tc.name,
			cardinality = r.cardinality and lower(r.cardinality) or nil,
		}
	end
	return model
end

return function(ctx)
	local model = build(ctx)
	local files = {
		["definition.pbism"] = require("pbism")(model, ctx),
		["definition/database.tmdl"] = require("database")(model, ctx),
		["definition/model.tmdl"] = require("model")(model, ctx),
		["definition/expressions.tmdl"] = require("expressions")(model, ctx),
	}
	local render_table = require "table"
	for _, t in ipairs(model.tables) do
		files["definition/tables/" .. t.file .. ".tmdl"] = render_table(t, model, ctx)
	end
	if #model.relationships > 0 then
		files["definition/relationships.tmdl"] = require("relationships")(model, ctx)
	end
	return files
end

-- main: the entry template. Receives ctx = { contract, target, options, names, emit } and
-- hands over a complete TMDL definition, definition.pbism and definition/...: each file either
-- through ctx.emit(path, text) or in the { [path] = text } table it returns.
-- It first builds a view model (names from naming.lua, types from the source's description
-- (templates/tmdl/sources/<type>.lua) or tmdl.column_type, lineage tags) that the per-file
-- templates render.
local tmdl = require "tmdl"
local naming = require "naming"

local lower, format = string.lower, string.format
local lineage_tag = tmdl.lineage_tag
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

-- A column type's error (a type a Power BI model cannot hold) naming the table too.
local function type_error(tname, err)
	error(format("table '%s': %s", shown(tname), tostring(err)), 0)
end

-- The model names of the relationship ends that name columns of t (built: t.column_by_source).
local function resolve_ends(t)
	for _, e in ipairs(t.ends or {}) do
		local r, cname = e.source, e.source[e.field]
		local col = t.column_by_source[cname]
		if not col then
			error(format("relationship %s.%s -> %s.%s: table '%s' has no column '%s'",
				shown(r.from_table), shown(r.from_column), shown(r.to_table), shown(r.to_column),
				shown(t.source.name), shown(cname)), 0)
		end
		e.rel[e.field] = col.name
	end
	t.ends = nil
end

-- The columns of model table t (t.columns, and t.column_by_source by contract name), built
-- right before t is written and dropped right after (see the end of this file), so a big
-- model never holds every column's view at once.
local function build_columns(t, ctx, id, column_type)
	local ct, key = t.source, ctx.names.key
	-- numeric loops: ipairs costs a library call per column
	local ccs = ct.columns or {}
	local nkeys = 0
	for i = 1, #ccs do
		if ccs[i].primary_key then nkeys = nkeys + 1 end
	end
	-- The checks of each column's name and type are written out here, the functions called
	-- only to raise their errors: this loop runs for every column of the model.
	local columns, by_source, seen = {}, {}, {}
	local max_length, tname = ctx.names.max_length, ct.name
	for i = 1, #ccs do
		local cc = ccs[i]
		local cname = naming.column_name(cc, ct, ctx)
		if type(cname) ~= "string" or cname == "" then
			must_be_name(cname, "column_name")
		end
		local folded = key(cname)
		if seen[folded] then
			error(format("table '%s': column '%s' is the same name as '%s'" .. SAME, shown(t.name),
				shown(cname), shown(seen[folded])), 0)
		end
		if #cname > max_length then
			check_length(ctx, cname, "column")
		end
		seen[folded] = cname
		local hidden = naming.column_hidden(cc, ct, ctx) and true or false
		local typed, ty = pcall(column_type, cc)
		if not typed then
			type_error(tname, ty)
		end
		local col = {
			name = cname,
			source = cc,
			source_column = cc.physical_name or cc.name,
			hidden = hidden,
			-- Power BI allows one key column per table: composite keys mark none.
			is_key = (cc.primary_key and nkeys == 1) and true or false,
			not_null = (cc.required or (cc.primary_key and nkeys == 1)) and true or false,
			type = ty,
			description = naming.column_description(cc, ct, ctx),
			lineage_tag = lineage_tag(id, "column", tname, cc.name),
		}
		columns[i] = col
		by_source[cc.name] = col
	end
	t.columns, t.column_by_source = columns, by_source
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
		local t = {
			name = name,
			source = ct,
			source_name = ct.physical_name or ct.name,
			kind = ct.physical_type == "view" and "View" or "Table",
			mode = ct.storage_mode or model.mode,
			description = naming.table_description(ct, ctx),
			lineage_tag = tmdl.lineage_tag(id, "table", ct.name),
		}
		model.tables[#model.tables + 1] = t
		by_source[ct.name] = t
	end

	local names = {}
	for i, t in ipairs(model.tables) do names[i] = t.name end
	for i, f in ipairs(tmdl.unique_file_names(names, key)) do model.tables[i].file = f end

	-- A relationship's column names are filled in when their tables' columns are built
	-- (resolve_sides): t.ends lists the ends that name a column of t.
	for _, r in ipairs(c.relationships or {}) do
		local rel = {
			name = tmdl.lineage_tag(id, "relationship", r.from_table, r.from_column,
				r.to_table, r.to_column),
			cardinality = r.cardinality and lower(r.cardinality) or nil,
		}
		for _, e in ipairs({ "from", "to" }) do
			local tname = r[e .. "_table"]
			local t = by_source[tname]
			if not t then
				error(format("relationship %s.%s -> %s.%s: no table '%s' in the contract",
					shown(r.from_table), shown(r.from_column), shown(r.to_table), shown(r.to_column),
					shown(tname)), 0)
			end
			rel[e .. "_table"] = t.name
			t.ends = t.ends or {}
			t.ends[#t.ends + 1] = { rel = rel, source = r, field = e .. "_column" }
		end
		model.relationships[#model.relationships + 1] = rel
	end
	model.column_type, model.id = column_type, id
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
	-- Each table's file goes to pbiport as soon as it is written (ctx.emit), and what only that
	-- table needed (its columns, here and in ctx.contract) is dropped: a big model then never
	-- holds every column twice and every file twice at once.
	local render_table, emit = require "table", ctx.emit
	for _, t in ipairs(model.tables) do
		build_columns(t, ctx, model.id, model.column_type)
		resolve_ends(t)
		emit("definition/tables/" .. t.file .. ".tmdl", render_table(t, model, ctx))
		t.columns, t.column_by_source, t.source.columns = nil, nil, nil
	end
	if #model.relationships > 0 then
		files["definition/relationships.tmdl"] = require("relationships")(model, ctx)
	end
	return files
end

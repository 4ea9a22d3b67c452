-- table: definition/tables/<file>.tmdl (tmdl.md sections 4 and 6): the table, its
-- columns and one M partition in the storage mode chosen with --mode.
local tmdl = require "tmdl"
local source = require "source"

local quote = tmdl.quote_name

local text = tmdl.text_value

-- The hot loop of a big model: lines are appended ready-indented with w:add.
local function column(w, col)
	local ty = col.type
	w:add("")
	w:description(1, col.description)
	w:add("\tcolumn " .. quote(col.name))
	w:add("\t\tdataType: " .. ty.data_type)
	if col.hidden then w:add("\t\tisHidden") end
	if col.is_key then w:add("\t\tisKey") end
	if col.not_null then w:add("\t\tisNullable: false") end
	if ty.format_string then w:add("\t\tformatString: " .. text(ty.format_string)) end
	w:add("\t\tlineageTag: " .. col.lineage_tag)
	w:add("\t\tsummarizeBy: " .. ty.summarize_by)
	w:add("\t\tsourceColumn: " .. text(col.source_column))
	for _, a in ipairs(ty.annotations) do
		w:add("")
		w:add("\t\tannotation " .. quote(a[1]) .. " = " .. a[2])
	end
end

return function(t, model, ctx)
	local w = tmdl.writer()
	w:description(0, t.description)
	w:line(0, "table " .. quote(t.name))
	w:raw_prop(1, "lineageTag", t.lineage_tag)
	for _, col in ipairs(t.columns) do
		column(w, col)
	end
	w:blank()
	w:line(1, "partition " .. quote(t.name) .. " = m")
	w:raw_prop(2, "mode", model.mode)
	w:line(2, "source =")
	w:expression(4, source(t, model, ctx))
	w:blank()
	w:annotation(1, "PBI_ResultType", "Table")
	w:blank()
	w:annotation(1, "PBI_NavigationStepName", "Navigation")
	return w:text()
end

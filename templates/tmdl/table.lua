-- table: definition/tables/<file>.tmdl (tmdl.md sections 4 and 6): the table, its
-- columns and one M partition in the table's storage mode (import, directQuery or dual:
-- the contract's powerbi.storageMode, --mode, or the source's default).
local tmdl = require "tmdl"
local source = require "source"

local quote = tmdl.quote_name

local text = tmdl.text_value
local describe = tmdl.description_text

-- Annotation lines of a column type, computed once per shared annotations list, ending
-- with the one that marks the column as pbiport's (tmdl.GENERATED).
local annotation_text = {}
local GENERATED = "\n\n\t\tannotation " .. tmdl.GENERATED .. " = true"

local function annotations(list)
	local s = annotation_text[list]
	if not s then
		local parts = {}
		for i, a in ipairs(list) do
			parts[i] = "\n\n\t\tannotation " .. quote(a[1]) .. " = " .. a[2]
		end
		parts[#parts + 1] = GENERATED
		s = table.concat(parts)
		annotation_text[list] = s
	end
	return s
end

-- The hot loop of a big model: one concatenation (one string) per column.
local function column(w, col)
	local ty = col.type
	w:add("\n" .. describe(1, col.description) ..
		"\tcolumn " .. quote(col.name) ..
		"\n\t\tdataType: " .. ty.data_type ..
		(col.hidden and "\n\t\tisHidden" or "") ..
		(col.is_key and "\n\t\tisKey" or "") ..
		(col.not_null and "\n\t\tisNullable: false" or "") ..
		(ty.format_string and "\n\t\tformatString: " .. text(ty.format_string) or "") ..
		"\n\t\tlineageTag: " .. col.lineage_tag ..
		"\n\t\tsummarizeBy: " .. ty.summarize_by ..
		"\n\t\tsourceColumn: " .. text(col.source_column) ..
		annotations(ty.annotations))
end

return function(t, model, ctx)
	local w = tmdl.writer()
	w:description(0, t.description)
	w:line(0, "table " .. quote(t.name))
	w:raw_prop(1, "lineageTag", t.lineage_tag)
	local columns = t.columns
	for i = 1, #columns do   -- a numeric loop: ipairs costs a library call per column
		column(w, columns[i])
	end
	w:blank()
	w:line(1, "partition " .. quote(t.name) .. " = m")
	w:raw_prop(2, "mode", t.mode or model.mode)
	w:line(2, "source =")
	w:expression(4, source(t, model, ctx))
	w:blank()
	w:generated(2)
	w:blank()
	w:annotation(1, "PBI_ResultType", "Table")
	w:blank()
	w:annotation(1, "PBI_NavigationStepName", "Navigation")
	w:blank()
	w:generated(1)
	return w:text()
end

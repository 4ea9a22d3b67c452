-- naming: how contract tables and columns appear in the semantic model.
-- Override this file (same name in a folder on PBIPORT_TEMPLATE_PATH or --templates)
-- to rename or hide things; every other template reads names from here, so
-- relationships and references stay consistent. See docs/templates.md.
local naming = {}

-- The model name of a contract table (t: a contract table).
function naming.table_name(t, ctx)
	return t.name
end

-- The model name of a contract column (col) of table t.
function naming.column_name(col, t, ctx)
	return col.name
end

-- Whether the column is hidden in reports.
function naming.column_hidden(col, t, ctx)
	return false
end

-- Descriptions written as /// lines (nil for none).
function naming.table_description(t, ctx)
	return t.description
end

function naming.column_description(col, t, ctx)
	return col.description
end

return naming

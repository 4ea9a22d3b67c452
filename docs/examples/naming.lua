-- Example override of templates/tmdl/naming.lua (see docs/templates.md):
-- columns get Title Case names ("customer_id" -> "Customer Id") and key columns
-- (primary keys and columns named like ids) are hidden from report authors.
-- Put this file in a folder and pass the folder with --templates, or list the folder
-- in PBIPORT_TEMPLATE_PATH. sourceColumn still points at the physical column.
local tmdl = require "tmdl"

local naming = {}

function naming.table_name(t, ctx)
	return t.name
end

function naming.column_name(col, t, ctx)
	return tmdl.title_case(col.name)
end

local function is_key(col)
	local n = string.lower(col.name)
	return col.primary_key or n == "id" or n:find("_id$") ~= nil or n:find("_key$") ~= nil
end

function naming.column_hidden(col, t, ctx)
	return is_key(col)
end

function naming.table_description(t, ctx)
	return t.description
end

function naming.column_description(col, t, ctx)
	return col.description
end

return naming

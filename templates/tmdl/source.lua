-- source: the Power Query M expression of a table's partition (tmdl.md section 10).
-- Navigates database/catalog -> schema -> table or view the way Power BI Desktop
-- writes it, with host, warehouse / HTTP path and database / catalog taken from the
-- parameters in expressions.tmdl.
local tmdl = require "tmdl"

local ident, str = tmdl.m_ident, tmdl.m_string

local function navigate(lines, db_param, t, model)
	local target = model.target
	local db_name = target.type == "snowflake" and target.database or target.catalog
	local db_step = ident(db_name .. "_Database")
	local schema_step = ident(target.schema .. "_Schema")
	local table_step = ident(t.source_name .. "_" .. t.kind)
	lines[#lines + 1] = "    " .. db_step .. " = Source{[Name=" .. db_param .. ',Kind="Database"]}[Data],'
	lines[#lines + 1] = "    " .. schema_step .. " = " .. db_step .. "{[Name=" .. str(target.schema) ..
		',Kind="Schema"]}[Data],'
	lines[#lines + 1] = "    " .. table_step .. " = " .. schema_step .. "{[Name=" .. str(t.source_name) ..
		',Kind="' .. t.kind .. '"]}[Data]'
	lines[#lines + 1] = "in"
	lines[#lines + 1] = "    " .. table_step
	return table.concat(lines, "\n")
end

return function(t, model, ctx)
	local target = model.target
	if target.type == "snowflake" then
		local options = target.role and (", [Role=" .. str(target.role) .. "]") or ""
		return navigate({ "let",
			"    Source = Snowflake.Databases(SnowflakeHost, SnowflakeWarehouse" .. options .. "),",
		}, "SnowflakeDatabase", t, model)
	end
	return navigate({ "let",
		"    Source = Databricks.Catalogs(DatabricksHost, DatabricksHttpPath, " ..
			"[Catalog=null, Database=null, EnableAutomaticProxyDiscovery=null]),",
	}, "DatabricksCatalog", t, model)
end

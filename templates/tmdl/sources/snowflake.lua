-- Snowflake (docs/templates.md "Sources"). The Power Query connector: learn.microsoft.com/
-- power-query/connectors/snowflake. Power BI Desktop writes
--   Source = Snowflake.Databases("acme.snowflakecomputing.com", "WH"[, [Role="R"]]),
--   DB_Database = Source{[Name="DB",Kind="Database"]}[Data],
--   S_Schema = DB_Database{[Name="S",Kind="Schema"]}[Data],
--   T_Table = S_Schema{[Name="T",Kind="Table"]}[Data]
-- (shared/reference/tmdl.md section 10). Fabric's cloud connection: type Snowflake, creation
-- method Snowflake.Databases, parameters server and warehouse (path "server;warehouse").
local tmdl = require "tmdl"
local sources = require "sources"

local str = tmdl.m_string

return {
	-- reads: what pbiport's M reader (core/lang/mlineage.h) must find the partitions read
	label = "Snowflake", reads = "snowflake",
	-- the values the model needs, from the contract's server (first key that has one)
	fields = {
		{ name = "host", keys = { "host", { key = "account", suffix = ".snowflakecomputing.com" } },
		  add = '"host" or "account"', required = true },
		{ name = "warehouse", required = true },
		{ name = "database", required = true },
		{ name = "schema", required = true },
		{ name = "role", option = false },
	},
	-- M parameters in definition/expressions.tmdl, which the partitions read
	parameters = {
		{ name = "SnowflakeHost", field = "host", description = "Snowflake account host name" },
		{ name = "SnowflakeWarehouse", field = "warehouse", description = "Snowflake virtual warehouse" },
		{ name = "SnowflakeDatabase", field = "database", description = "Snowflake database" },
	},
	connection = { type = "Snowflake", creation_method = "Snowflake.Databases",
		-- from: what the model's M reads (host, warehouse, http_path, database);
		-- match: how an existing connection's path part compares (server or text)
		parameters = {
			{ name = "server", from = "host", match = "server" },
			{ name = "warehouse", from = "warehouse", match = "text" },
		},
	},
	credentials = { sources.BASIC }, storage_modes = sources.ALL_MODES,

	m = function(t, model, ctx)
		local target = model.target
		local options = target.role and (", [Role=" .. str(target.role) .. "]") or ""
		return sources.by_name_to_table("Snowflake.Databases(SnowflakeHost, SnowflakeWarehouse" .. options .. ")",
			{ "SnowflakeDatabase", "Database", target.database .. "_Database" }, target.schema, t)
	end,
}

-- Databricks (docs/templates.md "Sources"). The Power Query connector: learn.microsoft.com/
-- power-query/connectors/databricks. Power BI Desktop writes
--   Source = Databricks.Catalogs("adb-1.2.azuredatabricks.net", "/sql/1.0/warehouses/x",
--       [Catalog=null, Database=null, EnableAutomaticProxyDiscovery=null]),
--   C_Database = Source{[Name="C",Kind="Database"]}[Data],
--   S_Schema = C_Database{[Name="S",Kind="Schema"]}[Data],
--   T_Table = S_Schema{[Name="T",Kind="Table"]}[Data]
-- (shared/reference/tmdl.md section 10). Fabric's cloud connection: type Databricks, creation
-- method Databricks.Catalogs, parameters host and httpPath (path "host;httpPath").
local sources = require "sources"

return {
	label = "Databricks", reads = "databricks",
	fields = {
		{ name = "host", required = true },
		-- the SQL warehouse's HTTP path: ODCS has no field for it; the publish request may
		-- give it (request = true) when the contract does not
		{ name = "http_path", keys = { "httpPath", "http_path" }, what = "HTTP path",
		  add = 'customProperties "httpPath"', required = true, request = true,
		  hint = "the SQL warehouse's, e.g. /sql/1.0/warehouses/0123456789abcdef" },
		{ name = "catalog", required = true },
		{ name = "schema", required = true },
	},
	parameters = {
		{ name = "DatabricksHost", field = "host", description = "Databricks server host name" },
		{ name = "DatabricksHttpPath", field = "http_path", description = "Databricks SQL warehouse HTTP path" },
		{ name = "DatabricksCatalog", field = "catalog", description = "Databricks Unity Catalog catalog" },
	},
	connection = { type = "Databricks", creation_method = "Databricks.Catalogs",
		parameters = {
			{ name = "host", from = "host", match = "server" },
			{ name = "httpPath", from = "http_path", match = "text" },
		},
	},
	credentials = { sources.TOKEN, sources.SERVICE_PRINCIPAL }, storage_modes = sources.ALL_MODES,

	m = function(t, model, ctx)
		local target = model.target
		return sources.by_name_to_table("Databricks.Catalogs(DatabricksHost, DatabricksHttpPath, " ..
			"[Catalog=null, Database=null, EnableAutomaticProxyDiscovery=null])",
			{ "DatabricksCatalog", "Database", target.catalog .. "_Database" }, target.schema, t)
	end,
}

-- Trino through ODBC: a source added with files only (docs/templates.md "Adding a source").
-- Copy it to <your template folder>/sources/trino.lua and a contract server of type trino
-- renders and dry-runs; Power BI reaches Trino through the Trino (or Starburst) ODBC driver on
-- an on-premises data gateway, so the description says gateway_only.
--
-- The M Power BI Desktop writes for ODBC with "Navigate using full hierarchy"
-- (learn.microsoft.com/powerquery-m/odbc-datasource):
--   Source = Odbc.DataSource("Driver={Trino ODBC Driver};Host=trino.example.com;Port=8443",
--       [HierarchicalNavigation=true]),
--   hive_Database = Source{[Name="hive",Kind="Database"]}[Data],
--   sales_Schema = hive_Database{[Name="sales",Kind="Schema"]}[Data],
--   orders_Table = sales_Schema{[Name="orders",Kind="Table"]}[Data]
local tmdl = require "tmdl"
local sources = require "sources"

local str = tmdl.m_string

return {
	label = "Trino (ODBC)", reads = "odbc",
	-- ODCS's trino server: host, port, catalog, schema
	fields = {
		{ name = "host", required = true },
		{ name = "port", default = "8443" },
		{ name = "catalog", required = true },
		{ name = "schema", required = true },
	},
	parameters = {
		{ name = "TrinoConnection", description = "Trino ODBC connection string",
		  value = function(target)
			return "Driver={Trino ODBC Driver};Host=" .. target.host .. ";Port=" .. target.port
		  end },
	},
	-- pbiport's M reader sees an ODBC source whose host is the connection string
	connection = { type = "Odbc", creation_method = "Odbc.DataSource",
		parameters = { { name = "connectionString", from = "host", match = "text" } },
	},
	credentials = { sources.BASIC }, storage_modes = { "import", "directQuery" },
	gateway_only = true,

	m = function(t, model, ctx)
		local target = model.target
		return sources.by_name_to_table("Odbc.DataSource(TrinoConnection, [HierarchicalNavigation=true])",
			{ str(target.catalog), "Database", target.catalog .. "_Database" }, target.schema, t)
	end,
}

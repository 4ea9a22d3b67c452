-- SQL Server and Azure SQL Database (docs/templates.md "Sources"). The Power Query connectors:
-- learn.microsoft.com/power-query/connectors/sql-server and .../azure-sql-database (Import and
-- DirectQuery; in the Power BI service: Basic (SQL authentication), organizational account
-- (OAuth2) and service principal); the function: learn.microsoft.com/powerquery-m/sql-database.
-- Power BI Desktop writes
--   Source = Sql.Database("contoso.database.windows.net", "sales"),
--   dbo_orders = Source{[Schema="dbo",Item="orders"]}[Data]
-- A port other than 1433 follows the server after a comma ("host,1444"). Fabric's cloud
-- connection: type SQL, creation method SQL, parameters server and database (path
-- "server;database"). An on-premises SQL Server needs a gateway (docs/publish.md).
local sources = require "sources"

-- Physical types of SQL Server (learn.microsoft.com/sql/t-sql/data-types) that the logical
-- type alone does not map right.
local TYPES = {
	datetime2 = sources.DATETIME, datetime = sources.DATETIME, smalldatetime = sources.DATETIME,
	datetimeoffset = sources.DATETIME,
	money = sources.CURRENCY, smallmoney = sources.CURRENCY,
	uniqueidentifier = sources.TEXT, xml = sources.TEXT, nvarchar = sources.TEXT, ntext = sources.TEXT,
	varbinary = sources.BINARY, binary = sources.BINARY, image = sources.BINARY, rowversion = sources.BINARY,
	bit = sources.BOOLEAN,
	float = sources.DOUBLE, ["real"] = sources.DOUBLE,
	geography = { unsupported = "a spatial value; turn it into text (.STAsText()) in a view" },
	geometry = { unsupported = "a spatial value; turn it into text (.STAsText()) in a view" },
	hierarchyid = { unsupported = "turn it into text (.ToString()) in a view" },
	sql_variant = { unsupported = "its values have no one type; CAST it in a view" },
}

return sources.server_database({ prefix = "Sql", what = "SQL", port = 1433, port_sep = ",", schema = "dbo" }, {
	label = "SQL Server", reads = "sql",
	connection = { type = "SQL", creation_method = "SQL" },
	credentials = { sources.BASIC, sources.SERVICE_PRINCIPAL }, storage_modes = sources.ALL_MODES,
	m = function(t, model, ctx)
		return sources.schema_item("Sql.Database(SqlServer, SqlDatabase)", model.target.schema, t.source_name)
	end,
	column_type = sources.column_types(TYPES, "SQL Server"),
})

-- MySQL (docs/templates.md "Sources"). The Power Query connector "MySQL database":
-- learn.microsoft.com/power-query/connectors/mysql-database: Import only, and in the Power BI
-- service only through an on-premises data gateway with MySQL Connector/NET installed (Basic
-- credentials "online service with gateway"): gateway_only. Power BI Desktop writes
--   Source = MySQL.Database("mysql.example.com:3306", "shop", [ReturnSingleDatabase=true]),
--   shop_orders = Source{[Schema="shop",Item="orders"]}[Data]
-- (MySQL has no schemas: the database is listed in their place). The gateway connection:
-- type MySql, creation method MySQL.Database, parameters server and database.
local sources = require "sources"

-- MySQL's types (dev.mysql.com/doc/refman/8.0/en/data-types.html) that the logical type alone
-- does not map right.
local TYPES = {
	datetime = sources.DATETIME, timestamp = sources.DATETIME,
	json = sources.TEXT, enum = sources.TEXT, set = sources.TEXT,
	blob = sources.BINARY, tinyblob = sources.BINARY, mediumblob = sources.BINARY, longblob = sources.BINARY,
	binary = sources.BINARY, varbinary = sources.BINARY,
	float = sources.DOUBLE, double = sources.DOUBLE, ["real"] = sources.DOUBLE,
}
for _, spatial in ipairs({ "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
		"multipolygon", "geometrycollection" }) do
	TYPES[spatial] = { unsupported = "a spatial value; turn it into text (ST_AsText) in a view" }
end

return sources.server_database({ prefix = "MySQL", what = "MySQL", port = 3306 }, {
	label = "MySQL", reads = "mysql",
	connection = { type = "MySql", creation_method = "MySQL.Database" },
	credentials = { sources.BASIC }, storage_modes = { "import" }, gateway_only = true,
	m = function(t, model, ctx)
		return sources.schema_item("MySQL.Database(MySQLServer, MySQLDatabase, [ReturnSingleDatabase=true])",
			model.target.database, t.source_name)
	end,
	column_type = sources.column_types(TYPES, "MySQL"),
})

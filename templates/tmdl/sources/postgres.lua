-- PostgreSQL (docs/templates.md "Sources"). The Power Query connector "PostgreSQL database":
-- learn.microsoft.com/power-query/connectors/postgresql (Import and DirectQuery; Database
-- (username/password) credentials, "Basic" in the Power BI service; a cloud connection since
-- Power BI ships the Npgsql provider); the function: learn.microsoft.com/powerquery-m/
-- postgresql-database. Power BI Desktop writes
--   Source = PostgreSQL.Database("pg.example.com", "sales"),
--   public_orders = Source{[Schema="public",Item="orders"]}[Data]
-- Fabric's cloud connection: type PostgreSQL, creation method PostgreSQL.Database, parameters
-- server and database (path "server;database").
local sources = require "sources"

-- Physical types of PostgreSQL (postgresql.org/docs/current/datatype.html) that the logical
-- type alone does not map right.
local TYPES = {
	money = sources.CURRENCY,
	uuid = sources.TEXT, json = sources.TEXT, jsonb = sources.TEXT, xml = sources.TEXT, citext = sources.TEXT,
	bytea = sources.BINARY,
	timestamptz = sources.DATETIME, ["timestamp with time zone"] = sources.DATETIME,
	-- Npgsql reads an interval as a Power Query duration, which a model holds as a number of days
	interval = sources.DOUBLE,
	["real"] = sources.DOUBLE, float4 = sources.DOUBLE, float8 = sources.DOUBLE,
	["double precision"] = sources.DOUBLE,
	["[]"] = { unsupported = "an array reaches Power Query as a list, which a model column cannot hold; "
		.. "unnest it or turn it into text (array_to_string) in a view" },
}
for _, range in ipairs({ "int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange",
		"int4multirange", "int8multirange", "nummultirange", "tsmultirange", "tstzmultirange", "datemultirange" }) do
	TYPES[range] = { unsupported = "a range reaches Power Query as a record; select its bounds (lower(), upper()) "
		.. "in a view" }
end

-- int4[] or its catalog name _int4: a PostgreSQL array (varchar[50] is a length, not an array).
local function is_array(col)
	local p = col.physical_type
	return p:find("%[%]%s*$") ~= nil or p:sub(1, 1) == "_"
end

return sources.server_database({ prefix = "PostgreSQL", what = "PostgreSQL", port = 5432, schema = "public" }, {
	label = "PostgreSQL", reads = "postgresql",
	connection = { type = "PostgreSQL", creation_method = "PostgreSQL.Database" },
	credentials = { sources.BASIC }, storage_modes = sources.ALL_MODES,
	m = function(t, model, ctx)
		return sources.schema_item("PostgreSQL.Database(PostgreSQLServer, PostgreSQLDatabase)", model.target.schema,
			t.source_name)
	end,
	column_type = sources.column_types(TYPES, "PostgreSQL", is_array),
})

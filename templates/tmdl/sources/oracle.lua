-- Oracle Database (docs/templates.md "Sources"). The Power Query connector:
-- learn.microsoft.com/power-query/connectors/oracle-database (Import and DirectQuery; in the
-- Power BI service through an on-premises data gateway with the Oracle client installed, Basic
-- or Windows credentials; Fabric lists Oracle only with a gateway): gateway_only. Power BI
-- Desktop writes, with "Navigate using full hierarchy",
--   Source = Oracle.Database("db.example.com:1521/ORCLPDB1", [HierarchicalNavigation=true]),
--   HR = Source{[Schema="HR"]}[Data],
--   EMPLOYEES1 = HR{[Name="EMPLOYEES"]}[Data]
-- where the server is host[:port]/service (EZConnect) or a TNS name. The gateway connection:
-- type Oracle, creation method Oracle.Database, parameter server. ODCS's oracle server has
-- host, port and serviceName; the schema (the owning user) comes from customProperties
-- "schema".
local tmdl = require "tmdl"
local sources = require "sources"

local ident, str = tmdl.m_ident, tmdl.m_string

-- Oracle's types (docs.oracle.com/en/database/oracle/oracle-database/19/sqlrf/Data-Types.html)
-- that the logical type alone does not map right. An Oracle DATE holds a time of day too.
local TYPES = {
	date = sources.DATETIME, timestamp = sources.DATETIME,
	binary_float = sources.DOUBLE, binary_double = sources.DOUBLE, float = sources.DOUBLE,
	raw = sources.BINARY, ["long raw"] = sources.BINARY, blob = sources.BINARY,
	clob = sources.TEXT, nclob = sources.TEXT, xmltype = sources.TEXT, rowid = sources.TEXT, urowid = sources.TEXT,
	interval = sources.DOUBLE,
	bfile = { unsupported = "a pointer to a file outside the database" },
	sdo_geometry = { unsupported = "a spatial value; turn it into text (SDO_UTIL.TO_WKTGEOMETRY) in a view" },
}

return {
	label = "Oracle", reads = "oracle",
	fields = {
		{ name = "host", required = true },
		{ name = "port" },
		{ name = "service_name", keys = { "serviceName", "service_name" }, what = "service name", required = true },
		{ name = "schema", required = true, add = 'customProperties "schema"' },
	},
	parameters = {
		{ name = "OracleServer", description = "Oracle server (host[:port]/service)",
		  value = function(target)
			return sources.host_port(target.host, target.port, 1521) .. "/" .. target.service_name
		  end },
	},
	connection = { type = "Oracle", creation_method = "Oracle.Database",
		parameters = {
			{ name = "server", from = "host", match = "server" },
		},
	},
	credentials = { sources.BASIC }, storage_modes = sources.ALL_MODES,
	gateway_only = true,

	m = function(t, model, ctx)
		local schema = model.target.schema
		local schema_step = ident(schema)
		return sources.let({
			{ "Source", "Oracle.Database(OracleServer, [HierarchicalNavigation=true])" },
			{ schema_step, "Source{[Schema=" .. str(schema) .. "]}[Data]" },
			{ ident(t.source_name .. "1"), schema_step .. "{[Name=" .. str(t.source_name) .. "]}[Data]" },
		})
	end,
	column_type = sources.column_types(TYPES, "Oracle"),
}

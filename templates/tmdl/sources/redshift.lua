-- Amazon Redshift (docs/templates.md "Sources"). The Power Query connector:
-- learn.microsoft.com/power-query/connectors/amazon-redshift (Import and DirectQuery; Amazon
-- Redshift (Basic) or Microsoft account credentials). Power BI Desktop writes
--   Source = AmazonRedshift.Database("examplecluster.abc123.us-west-2.redshift.amazonaws.com:5439", "dev"),
--   public = Source{[Name="public"]}[Data],
--   orders1 = public{[Name="orders"]}[Data]
-- Fabric's cloud connection: type AmazonRedshift, creation method AmazonRedshift.Database,
-- parameters server and database (the connector's resource path "server;database").
local tmdl = require "tmdl"
local sources = require "sources"

local str = tmdl.m_string

-- Redshift's types (docs.aws.amazon.com/redshift/latest/dg/c_Supported_data_types.html) that the
-- logical type alone does not map right.
local TYPES = {
	timestamptz = sources.DATETIME, ["timestamp with time zone"] = sources.DATETIME,
	super = sources.TEXT,
	varbyte = sources.BINARY, ["binary varying"] = sources.BINARY, varbinary = sources.BINARY,
	["real"] = sources.DOUBLE, float4 = sources.DOUBLE, float8 = sources.DOUBLE, float = sources.DOUBLE,
	["double precision"] = sources.DOUBLE,
	geometry = { unsupported = "a spatial value; turn it into text (ST_AsText) in a view" },
	geography = { unsupported = "a spatial value; turn it into text (ST_AsText) in a view" },
	hllsketch = { unsupported = "turn it into a number (HLL_CARDINALITY) in a view" },
}

return sources.server_database({ prefix = "Redshift", what = "Amazon Redshift", port = 5439, schema = "public" }, {
	label = "Amazon Redshift", reads = "redshift",
	connection = { type = "AmazonRedshift", creation_method = "AmazonRedshift.Database" },
	credentials = { sources.BASIC }, storage_modes = sources.ALL_MODES,
	m = function(t, model, ctx)
		local schema = model.target.schema
		return sources.let(sources.by_name("AmazonRedshift.Database(RedshiftServer, RedshiftDatabase)", {
			{ str(schema), nil, schema },
			{ str(t.source_name), nil, t.source_name .. "1" },
		}))
	end,
	column_type = sources.column_types(TYPES, "Redshift"),
})

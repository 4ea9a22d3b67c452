-- Google BigQuery (docs/templates.md "Sources"). The Power Query connector:
-- learn.microsoft.com/power-query/connectors/google-bigquery (Import and DirectQuery;
-- organizational account, or a service account: in the Power BI service "Basic" with the
-- service account's email as user name and its JSON key, on one line, as password). Power BI
-- Desktop writes
--   Source = GoogleBigQuery.Database([BillingProject="billing-project"]),
--   #"my-project" = Source{[Name="my-project"]}[Data],
--   sales_Schema = #"my-project"{[Name="sales",Kind="Schema"]}[Data],
--   orders_Table = sales_Schema{[Name="orders",Kind="Table"]}[Data]
-- with the billing project the docs recommend for refreshes in the service. Fabric's cloud
-- connection: type GoogleBigQuery, creation method GoogleBigQuery.Database, no parameters
-- ("Google BigQuery doesn't support multiple cloud connections because it lacks a parameters
-- field": every BigQuery connection matches).
local sources = require "sources"

-- BigQuery's types (cloud.google.com/bigquery/docs/reference/standard-sql/data-types) that the
-- logical type alone does not map right. Nested fields (STRUCT, ARRAY) and GEOGRAPHY reach
-- Power BI as text (JSON, WKT).
local TYPES = {
	int64 = {}, float64 = sources.DOUBLE, bignumeric = sources.DOUBLE, bigdecimal = sources.DOUBLE,
	bool = sources.BOOLEAN,
	bytes = sources.BINARY,
	datetime = sources.DATETIME, timestamp = sources.DATETIME,
	struct = sources.TEXT, record = sources.TEXT, array = sources.TEXT, json = sources.TEXT, geography = sources.TEXT,
	interval = { unsupported = "Power BI's BigQuery connector has no type for it; turn it into text or seconds in "
		.. "a view" },
	range = { unsupported = "select its bounds (RANGE_START, RANGE_END) in a view" },
}

return {
	label = "Google BigQuery", reads = "bigquery",
	fields = {
		{ name = "project", keys = { "project", "datasetProject" }, required = true },
		{ name = "dataset", keys = { "dataset", "database" }, required = true },
		{ name = "billing_project", keys = { "billingProject", "billing_project" }, what = "billing project",
		  add = 'customProperties "billingProject"', default_from = "project" },
	},
	parameters = {
		{ name = "BigQueryBillingProject", field = "billing_project", description = "BigQuery billing project" },
		{ name = "BigQueryProject", field = "project", description = "BigQuery project" },
	},
	connection = { type = "GoogleBigQuery", creation_method = "GoogleBigQuery.Database",
		parameters = {},
	},
	credentials = {
		{ kind = "service_account", fabric = "Basic", label = "Service account (email and JSON key)",
		  fields = {
			{ name = "email", label = "Service account email" },
			{ name = "json_key", label = "Service account JSON key (one line)", secret = true },
		  } },
	},
	storage_modes = sources.ALL_MODES,

	m = function(t, model, ctx)
		local target = model.target
		return sources.by_name_to_table("GoogleBigQuery.Database([BillingProject=BigQueryBillingProject])",
			{ "BigQueryProject", nil, target.project }, target.dataset, t)
	end,
	column_type = sources.column_types(TYPES, "BigQuery"),
}

-- Azure Synapse Analytics (dedicated or serverless SQL pools) and the Fabric Warehouse /
-- Lakehouse SQL analytics endpoint (docs/templates.md "Sources"): SQL Server's connector on the
-- endpoint (learn.microsoft.com/power-query/connectors/azure-sql-data-warehouse; the Fabric
-- Warehouse's: learn.microsoft.com/fabric/data-warehouse/connectivity): Sql.Database on
-- "<workspace>.sql.azuresynapse.net" or "<id>.datawarehouse.fabric.microsoft.com", the same
-- Fabric connection (type SQL). ODCS's synapse server has host, port and database; the schema
-- comes from customProperties "schema", else dbo. The Fabric Warehouse and Lakehouse endpoints
-- take Microsoft Entra identities only: publish them with a service principal.
local sources = require "sources"

return sources.extend(require "sources.sqlserver", {
	label = "Azure Synapse / Fabric SQL endpoint",
	credentials = { sources.SERVICE_PRINCIPAL, sources.BASIC },
})

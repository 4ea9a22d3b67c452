-- sources: what the source descriptions in templates/tmdl/sources/ share (docs/templates.md,
-- "Sources"): the credential kinds as Fabric takes them for a ShareableCloud connection, the
-- shapes of M navigation Power BI Desktop writes, and a type mapping by physical type.
local tmdl = require "tmdl"

local M = {}

local ident, str = tmdl.m_ident, tmdl.m_string
local lower, gsub, match, find, format = string.lower, string.gsub, string.match, string.find, string.format
local concat = table.concat
local type, error, ipairs = type, error, ipairs

-- ---- credential kinds ----------------------------------------------------------------
-- kind: the publish request's credential_type; fabric: Fabric's credentialType, whose fields
-- are, in this order, Basic (username, password), Key (key), ServicePrincipal (tenant,
-- client id, secret); fields: the request's names, the labels the publish form shows, secret
-- (never shown again), guid (must be a GUID: says of what).

M.BASIC = {
	kind = "basic", fabric = "Basic", label = "Username and password",
	fields = {
		{ name = "username", label = "Username" },
		{ name = "password", label = "Password", secret = true },
	},
}

M.TOKEN = {
	kind = "token", fabric = "Key", label = "Personal Access Token",
	fields = { { name = "token", label = "Personal Access Token", secret = true } },
}

M.SERVICE_PRINCIPAL = {
	kind = "service_principal", fabric = "ServicePrincipal", label = "OAuth2 Service Principal",
	fields = {
		{ name = "tenant_id", label = "Tenant ID", guid = "a Microsoft Entra tenant" },
		{ name = "client_id", label = "Client ID", guid = "a Microsoft Entra application (client)" },
		{ name = "client_secret", label = "Client Secret", secret = true },
	},
}

-- The storage modes a partition may have in TMDL (tmdl.md section 6).
M.ALL_MODES = { "import", "directQuery", "dual" }

-- A description made from another (base) with some entries replaced (over): a source that
-- reads like another, under its own name (synapse.lua).
function M.extend(base, over)
	local d = {}
	for k, v in pairs(base) do d[k] = v end
	for k, v in pairs(over) do d[k] = v end
	return d
end

-- ---- M ----------------------------------------------------------------------------------

-- The M text of a partition: `let` steps (each "Name = expression"), `in` the last one.
function M.let(steps)
	local lines = { "let" }
	for i, s in ipairs(steps) do
		lines[#lines + 1] = "    " .. s[1] .. " = " .. s[2] .. (i < #steps and "," or "")
	end
	lines[#lines + 1] = "in"
	lines[#lines + 1] = "    " .. steps[#steps][1]
	return concat(lines, "\n")
end

-- A call of an M function on M expressions (already M text): Fn(a, b, ...).
function M.call(fn, ...)
	return fn .. "(" .. concat({ ... }, ", ") .. ")"
end

-- An M record of options [A=..., B=...] from a list { {name, M text}, ... }; "" for none.
function M.options(list)
	local parts = {}
	for _, o in ipairs(list) do
		if o[2] ~= nil then parts[#parts + 1] = o[1] .. "=" .. o[2] end
	end
	return #parts > 0 and ("[" .. concat(parts, ", ") .. "]") or ""
end

-- Navigation by Name and Kind, level after level, as Desktop writes it for Snowflake,
-- Databricks and BigQuery: source, then { {name M text, kind or nil, step name}, ... }.
-- Returns the let steps.
function M.by_name(source, levels)
	local steps = { { "Source", source } }
	local prev = "Source"
	for _, l in ipairs(levels) do
		local step = ident(l[3])
		steps[#steps + 1] = { step, prev .. "{[Name=" .. l[1] .. (l[2] and (',Kind="' .. l[2] .. '"') or "") .. "]}[Data]" }
		prev = step
	end
	return steps
end

-- Navigation by Schema and Item in one step, as Desktop writes it for SQL Server,
-- PostgreSQL and MySQL: Source{[Schema="dbo",Item="orders"]}[Data].
function M.schema_item(source, schema, item)
	return M.let({
		{ "Source", source },
		{ ident(schema .. "_" .. item), "Source{[Schema=" .. str(schema) .. ",Item=" .. str(item) .. "]}[Data]" },
	})
end

-- Navigation by Name and Kind down to a table or view, as Desktop writes it for Snowflake,
-- Databricks, BigQuery and ODBC: source, the first level ({ name M text, kind or nil, step
-- name }: a database, catalog or project), the schema, then the table or view t. Returns the M.
function M.by_name_to_table(source, first, schema, t)
	return M.let(M.by_name(source, {
		first,
		{ str(schema), "Schema", schema .. "_Schema" },
		{ str(t.source_name), t.kind, t.source_name .. "_" .. t.kind },
	}))
end

-- A server as M connectors take it: host, with ":port" (or sep .. port) unless it is the
-- default port or none.
function M.host_port(host, port, default_port, sep)
	if port == nil or port == "" or tostring(port) == tostring(default_port) then
		return host
	end
	return host .. (sep or ":") .. port
end

-- The description d of a source reached by a server and a database (PostgreSQL, SQL Server,
-- Redshift, MySQL), completed with what such sources share: its fields (host, port, database,
-- and schema with a default when the source has schemas), its M parameters <prefix>Server
-- (host, with the port unless it is the default) and <prefix>Database, and its Fabric
-- connection's parameters server and database (the path "server;database").
-- reach = { prefix, what ("PostgreSQL"), port (the default), port_sep (":"), schema (the
-- default schema, or nil) }; d.connection has its type and creation_method.
function M.server_database(reach, d)
	local fields = { { name = "host", required = true }, { name = "port" }, { name = "database", required = true } }
	if reach.schema then fields[4] = { name = "schema", default = reach.schema } end
	local sep = reach.port_sep or ":"
	d.fields = fields
	d.parameters = {
		{ name = reach.prefix .. "Server", description = reach.what .. " server (host[" .. sep .. "port])",
		  value = function(target) return M.host_port(target.host, target.port, reach.port, sep) end },
		{ name = reach.prefix .. "Database", field = "database", description = reach.what .. " database" },
	}
	d.connection.parameters = {
		{ name = "server", from = "host", match = "server" },
		{ name = "database", from = "database", match = "text" },
	}
	return d
end

-- ---- types ------------------------------------------------------------------------------

-- The base name of a physical type: lower case, without (p,s), <...> or a trailing [].
function M.base_type(physical)
	if type(physical) ~= "string" then return nil end
	local t = lower(physical)
	t = gsub(t, "^%s+", "")
	t = match(t, "^[^(<%[]*") or t
	t = gsub(t, "%s+$", "")
	return t
end

local function copy_type(t)
	local c = {}
	for k, v in pairs(t) do c[k] = v end
	return c
end

-- A column's TMDL type, refined by its physical type with rules = { [base type] = rule },
-- where a rule is a table overriding the logical type's result ({ data_type, format_string,
-- summarize_by, annotations }), a function(col, result) returning one, or
-- { unsupported = "why" }: the type cannot be represented in a Power BI model, and the
-- render fails naming the column. array(col) may say a physical type is an array of the
-- source (PostgreSQL's int4[]), which gets rules["[]"].
function M.column_type(col, rules, source_label, array)
	local result = tmdl.column_type(col)
	local base = M.base_type(col.physical_type)
	if not base then return result end
	local rule = rules[base]
	if rule == nil and array and array(col) then rule = rules["[]"] end
	if rule == nil then return result end
	if type(rule) == "function" then return rule(col, result) end
	if rule.unsupported then
		error(format("column '%s': %s type %s cannot be represented in a Power BI model (%s)",
			col.name, source_label, col.physical_type, rule.unsupported), 0)
	end
	local t = copy_type(result)
	for k, v in pairs(rule) do t[k] = v end
	return t
end

-- A description's column_type: column_type above with these rules, label and array test.
function M.column_types(rules, source_label, array)
	return function(col) return M.column_type(col, rules, source_label, array) end
end

-- Common refinements.
local SUMMARIZATION = { "SummarizationSetBy", "Automatic" }
M.TEXT = { data_type = "string", format_string = false, summarize_by = "none", annotations = { SUMMARIZATION } }
M.BINARY = { data_type = "binary", format_string = false, summarize_by = "none", annotations = { SUMMARIZATION } }
M.DATETIME = { data_type = "dateTime", format_string = "General Date", summarize_by = "none",
	annotations = { SUMMARIZATION } }
M.CURRENCY = { data_type = "decimal", format_string = "\\$#,0.00;(\\$#,0.00);\\$#,0.00" }
M.DOUBLE = { data_type = "double", format_string = false,
	annotations = { SUMMARIZATION, { "PBI_FormatHint", '{"isGeneralNumber":true}' } } }
M.BOOLEAN = { data_type = "boolean", format_string = false, summarize_by = "none", annotations = { SUMMARIZATION } }

return M

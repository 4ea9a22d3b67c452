-- model: definition/model.tmdl (tmdl.md section 7): model properties, query order and
-- one `ref table` line per table in contract order.
local tmdl = require "tmdl"

return function(model, ctx)
	local w = tmdl.writer()
	w:line(0, "model Model")
	w:prop(1, "culture", model.culture)
	w:raw_prop(1, "defaultPowerBIDataSourceVersion", "powerBI_V3")
	w:prop(1, "sourceQueryCulture", model.culture)
	w:line(1, "dataAccessOptions")
	w:line(2, "legacyRedirects")
	w:line(2, "returnErrorValuesAsNull")
	w:blank()
	local order = {}
	for _, p in ipairs(model.parameters) do order[#order + 1] = tmdl.json_string(p.name) end
	for _, t in ipairs(model.tables) do order[#order + 1] = tmdl.json_string(t.name) end
	w:annotation(0, "PBI_QueryOrder", "[" .. table.concat(order, ",") .. "]")
	w:blank()
	w:annotation(0, "__PBI_TimeIntelligenceEnabled", "0")
	w:blank()
	w:generated(0)
	if #model.tables > 0 then
		w:blank()
		for _, t in ipairs(model.tables) do
			w:line(0, "ref table " .. tmdl.quote_name(t.name))
		end
	end
	return w:text()
end

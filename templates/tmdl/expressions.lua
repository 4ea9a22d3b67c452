-- expressions: definition/expressions.tmdl (tmdl.md section 9): one M text parameter
-- per connection value, referenced by every partition's source.
local tmdl = require "tmdl"

local META = ' meta [IsParameterQuery=true, Type="Text", IsParameterQueryRequired=true]'

return function(model, ctx)
	local w = tmdl.writer()
	for i, p in ipairs(model.parameters) do
		if i > 1 then w:blank() end
		w:description(0, p.description)
		w:line(0, "expression " .. tmdl.quote_name(p.name) .. " = " .. tmdl.m_string(p.value) .. META)
		w:raw_prop(1, "lineageTag", p.lineage_tag)
		w:blank()
		w:annotation(1, "PBI_ResultType", "Text")
		w:blank()
		w:generated(1)
	end
	return w:text()
end

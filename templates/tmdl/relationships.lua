-- relationships: definition/relationships.tmdl (tmdl.md section 8). fromColumn is the
-- many side; names are deterministic UUIDs; only non-default properties are written.
local tmdl = require "tmdl"

return function(model, ctx)
	local w = tmdl.writer()
	for i, r in ipairs(model.relationships) do
		if i > 1 then w:blank() end
		w:line(0, "relationship " .. r.name)
		if r.cardinality == "one-to-one" then
			w:raw_prop(1, "fromCardinality", "one")
		elseif r.cardinality == "many-to-many" then
			w:raw_prop(1, "toCardinality", "many")
		end
		w:raw_prop(1, "fromColumn", tmdl.column_ref(r.from_table, r.from_column))
		w:raw_prop(1, "toColumn", tmdl.column_ref(r.to_table, r.to_column))
		w:blank()
		w:generated(1)
	end
	return w:text()
end

-- database: definition/database.tmdl (tmdl.md section 3).
local tmdl = require "tmdl"

return function(model, ctx)
	local w = tmdl.writer()
	w:line(0, "database")
	w:raw_prop(1, "compatibilityLevel", "1604")
	return w:text()
end

-- source: the Power Query M expression of a table's partition (tmdl.md section 10). Each
-- source writes its own, with the navigation Power BI Desktop writes for that connector: the
-- function m of its description, templates/tmdl/sources/<type>.lua (model.source).
return function(t, model, ctx)
	return model.source.m(t, model, ctx)
end

-- pbism: definition.pbism, the semantic model item's properties (tmdl.md 1.3).
return function(model, ctx)
	return '{\n' ..
		'  "$schema": "https://developer.microsoft.com/json-schemas/fabric/item/semanticModel/definitionProperties/1.0.0/schema.json",\n' ..
		'  "version": "4.2",\n' ..
		'  "settings": {}\n' ..
		'}\n'
end

-- /data-products/new: "Add Data Product" from an ODCS data contract, pasted or uploaded.
-- view.form = { contract = the text pasted before, filename }; view.error: why the last try was
-- refused (the contract reader's message names the line and column).
local html = require("html")
local h = html.tags
local layout = require("web.layout")

return function(view)
  local form = view.form or {}
  local err = view.error
  return layout.page(view, {
    title = "Add Data Product",
    crumbs = { { "Data Products", "/" } },
    lead = h.p{ "Paste an ODCS data contract (YAML or JSON) or upload its file. Each server of the contract ",
                "becomes an output port; adding a contract whose id exists updates that data product." },
    main = {
      layout.form_error(err, "The contract was not added"),
      h.form{ method = "post", action = "/data-products/new", enctype = "multipart/form-data", class = "stack",
        layout.csrf(view),
        layout.field("contract", "Contract", {
          h.p{ class = "hint", id = "contract-hint", "YAML or JSON, as the contract's file holds it." },
          h.textarea{ id = "contract", name = "contract", rows = "16", spellcheck = "false",
                      ["aria-describedby"] = err and "contract-hint form-error" or "contract-hint",
                      ["aria-invalid"] = err and "true" or nil,
                      form.contract or "" },
        }),
        layout.field("contract_file", "Or upload a contract file",
          h.input{ type = "file", id = "contract_file", name = "contract_file",
                   accept = ".yaml,.yml,.json,application/yaml,application/json,text/yaml" }),
        h.div{ class = "buttons",
          h.button{ type = "submit", "Add Data Product" },
          h.a{ class = "button secondary", href = "/", "Cancel" },
        },
      },
    },
  })
end

-- The lineage picture of a page (a data product's, an asset's): the SVG pbiport draws for
-- GET /lineage.svg?node=&depth= (Graphviz lays it out), shown in an <object> so its boxes link to
-- their pages; without the picture, a link to it.
--
--   local lineage = require("web.lineage")
--   lineage.figure{ url = view.lineage_svg, name = p.name }
local html = require("html")
local h = html.tags

local lineage = {}

--- A section "Lineage" with the picture at url; name: what it is the lineage of.
function lineage.section(p)
  if not p.url then return nil end
  return h.section{ class = "lineage", ["aria-labelledby"] = "lineage",
    h.h2{ id = "lineage", "Lineage" },
    h.figure{
      h.div{ class = "lineage-picture",
        h.object{ type = "image/svg+xml", data = p.url, ["aria-label"] = "Lineage of " .. (p.name or ""),
          h.p{ h.a{ href = p.url, "The lineage picture" } } },
      },
      h.figcaption{ class = "muted",
        "Upstream on the left, downstream on the right; each box links to its page. ",
        h.a{ href = p.url, target = "_blank", "Open the picture on its own",
             h.span{ class = "visually-hidden", " (opens in a new tab)" } } },
    },
  }
end

return lineage

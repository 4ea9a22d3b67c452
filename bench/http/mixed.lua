-- wrk script (LuaJIT / Lua 5.1): 90% GET /api/data-products/{id}, 10% imports (POST of the
-- orders contract under one of IMPORT_IDS contract ids, so most imports update a data product).
-- Environment: BENCH_TOKEN (Bearer token), BENCH_PRODUCT_ID, BENCH_CONTRACT (YAML file path).
local IMPORT_EVERY = 10
local IMPORT_IDS = 50

local token = os.getenv("BENCH_TOKEN")
local product = os.getenv("BENCH_PRODUCT_ID")
local f = assert(io.open(os.getenv("BENCH_CONTRACT"), "rb"))
local contract = f:read("*a")
f:close()

local get_req
local n = 0

function init(args)
  get_req = wrk.format("GET", "/api/data-products/" .. product,
                       { ["Authorization"] = "Bearer " .. token })
end

function request()
  n = n + 1
  if n % IMPORT_EVERY ~= 0 then
    return get_req
  end
  local id = "urn:pbiport:bench:mixed-" .. math.floor(n / IMPORT_EVERY) % IMPORT_IDS
  local body = contract:gsub("\nid: [^\n]*", "\nid: " .. id, 1)
  return wrk.format("POST", "/api/data-products",
                    { ["Authorization"] = "Bearer " .. token,
                      ["Content-Type"] = "application/yaml" }, body)
end

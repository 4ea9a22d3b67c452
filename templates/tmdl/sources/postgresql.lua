-- postgresql: the other ODCS name of PostgreSQL (postgres.lua).
return require "sources.postgres"

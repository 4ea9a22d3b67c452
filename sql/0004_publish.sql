-- pbiport schema 4: publishing to Power BI. A published semantic model becomes a consumer data
-- product (data_products.type 'powerbi_semantic_model') with an approved data-usage agreement
-- on the output port it reads, a lineage edge port -> consumer product, and a published_models
-- row with the workspace, model id and web URL.

-- Edges of the lineage graph that no other table implies (publish and import write them with
-- core/store/lineage_store.c). Kinds: data_product, output_port, or an imported asset kind.
-- id and created_at are always written by lineage_edge_add(); they stay nullable so older
-- readers that insert bare edges keep working.
CREATE TABLE lineage_edges (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    from_kind   TEXT NOT NULL,
    from_id     TEXT NOT NULL,
    to_kind     TEXT NOT NULL,
    to_id       TEXT NOT NULL,
    created_at  TEXT,
    UNIQUE (org_id, from_kind, from_id, to_kind, to_id)
);
CREATE INDEX lineage_edges_from ON lineage_edges (org_id, from_id);
CREATE INDEX lineage_edges_to ON lineage_edges (org_id, to_id);

-- A data-usage agreement: a consumer data product may read an output port.
CREATE TABLE agreements (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    consumer_product_id TEXT NOT NULL REFERENCES data_products (id) ON DELETE CASCADE,
    output_port_id      TEXT NOT NULL REFERENCES output_ports (id) ON DELETE CASCADE,
    state               TEXT NOT NULL CHECK (state IN ('requested', 'approved', 'rejected', 'cancelled')),
    purpose             TEXT,
    requested_by        TEXT REFERENCES users (id) ON DELETE SET NULL,
    approved_at         TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (consumer_product_id, output_port_id)
);
CREATE INDEX agreements_port ON agreements (output_port_id);

-- One row per finished publish job (job_id unique: a finalizing phase run twice writes once).
CREATE TABLE published_models (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    output_port_id      TEXT NOT NULL REFERENCES output_ports (id) ON DELETE CASCADE,
    user_id             TEXT REFERENCES users (id) ON DELETE SET NULL,
    job_id              TEXT NOT NULL UNIQUE,
    workspace_id        TEXT NOT NULL,
    semantic_model_id   TEXT NOT NULL,
    name                TEXT NOT NULL,
    web_url             TEXT,
    connection_id       TEXT,
    consumer_product_id TEXT REFERENCES data_products (id) ON DELETE SET NULL,
    agreement_id        TEXT REFERENCES agreements (id) ON DELETE SET NULL,
    published_at        TEXT NOT NULL
);
CREATE INDEX published_models_port ON published_models (output_port_id, published_at);

-- Series: one row per (tenant, name, labels). series_hash is sha256 over the canonical key, so the
-- unique constraint is cheap and ids can be resolved by hash from caches.
CREATE TABLE series (
    series_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text        NOT NULL,
    name        text        NOT NULL,
    labels      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    series_hash bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT series_tenant_hash_key UNIQUE (tenant_id, series_hash)
);
CREATE INDEX series_tenant_name_idx ON series (tenant_id, name);
CREATE INDEX series_labels_idx ON series USING gin (labels jsonb_path_ops);

-- Samples: append-only, partitioned by time (one partition per day, created on demand); retention
-- drops whole partitions. BRIN on time keeps the index tiny and COPY fast.
CREATE TABLE samples (
    series_id bigint           NOT NULL,
    time      timestamptz      NOT NULL,
    value     double precision NOT NULL
) PARTITION BY RANGE (time);
CREATE INDEX samples_time_brin ON samples USING brin (time);

-- Idempotency: a batch id is recorded in the same transaction as its rows.
CREATE TABLE ingest_batches (
    tenant_id    text        NOT NULL,
    batch_id     text        NOT NULL,
    point_count  integer     NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, batch_id)
);
CREATE INDEX ingest_batches_committed_idx ON ingest_batches USING brin (committed_at);

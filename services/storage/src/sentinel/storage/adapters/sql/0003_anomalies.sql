-- Anomalies (issue 4): one row per anomalous episode of one series, as detection reports it.
-- Idempotent by (tenant_id, anomaly_id): detection derives the id from the tenant, series and
-- start time, and rewrites the row as the episode grows (peak, score, point_count) and closes
-- (end_time). The series is kept by value (name, labels) plus its identity hash, so anomalies
-- of series that never had samples stored are kept too, and matchers work as on `series`.
CREATE TABLE anomalies (
    tenant_id     text             NOT NULL,
    anomaly_id    text             NOT NULL,
    name          text             NOT NULL,
    labels        jsonb            NOT NULL DEFAULT '{}'::jsonb,
    series_hash   bytea            NOT NULL,
    start_time    timestamptz      NOT NULL,
    peak_time     timestamptz,
    end_time      timestamptz,
    value         double precision NOT NULL,
    baseline      double precision NOT NULL,
    score         double precision NOT NULL CHECK (score >= 0 AND score <= 1),
    severity      smallint         NOT NULL,
    anomaly_type  smallint         NOT NULL,
    contributions jsonb            NOT NULL DEFAULT '[]'::jsonb,
    explanation   text             NOT NULL DEFAULT '',
    point_count   integer          NOT NULL DEFAULT 0,
    created_at    timestamptz      NOT NULL DEFAULT now(),
    updated_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, anomaly_id)
);
-- Listing is newest start first, paged by (start_time, anomaly_id).
CREATE INDEX anomalies_tenant_start_idx ON anomalies (tenant_id, start_time DESC, anomaly_id DESC);
CREATE INDEX anomalies_series_idx ON anomalies (tenant_id, series_hash, start_time DESC);
CREATE INDEX anomalies_labels_idx ON anomalies USING gin (labels jsonb_path_ops);

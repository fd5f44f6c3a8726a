-- Incident-manager's records (issue 5): alerts, incidents, timeline entries, silences, policies.
--
-- Every table is keyed by tenant first. Each row keeps the caller's serialized protobuf message
-- (`body`, stored and returned as given) beside the columns storage filters, orders, counts or
-- enforces rules on; labels are jsonb for matchers (GIN, jsonb_path_ops serves containment).
-- Enum columns hold the contract's enum numbers.

CREATE TABLE alerts (
    tenant_id       text        NOT NULL,
    alert_id        text        NOT NULL,
    fingerprint     text        NOT NULL,
    group_key       text        NOT NULL DEFAULT '',
    incident_id     text        NOT NULL DEFAULT '',
    status          smallint    NOT NULL DEFAULT 0,
    service         text        NOT NULL DEFAULT '',
    model           text        NOT NULL DEFAULT '',
    labels          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- first_seen_time falls back to last_seen_time, last_seen_time to the write time.
    first_seen_time timestamptz NOT NULL,
    last_seen_time  timestamptz NOT NULL,
    duplicate_count bigint      NOT NULL DEFAULT 0,
    silenced        boolean     NOT NULL DEFAULT false,
    version         bigint      NOT NULL,
    body            bytea       NOT NULL,
    PRIMARY KEY (tenant_id, alert_id)
);
CREATE INDEX alerts_last_seen_idx ON alerts (tenant_id, last_seen_time DESC, alert_id DESC);
CREATE INDEX alerts_first_seen_idx ON alerts (tenant_id, first_seen_time);
CREATE INDEX alerts_fingerprint_idx ON alerts (tenant_id, fingerprint, last_seen_time DESC);
CREATE INDEX alerts_incident_idx ON alerts (tenant_id, incident_id) WHERE incident_id <> '';
CREATE INDEX alerts_group_key_idx ON alerts (tenant_id, group_key) WHERE group_key <> '';
CREATE INDEX alerts_labels_idx ON alerts USING gin (labels jsonb_path_ops);

CREATE TABLE incidents (
    tenant_id            text        NOT NULL,
    incident_id          text        NOT NULL,
    group_key            text        NOT NULL,
    state                smallint    NOT NULL,
    severity             smallint    NOT NULL DEFAULT 0,
    priority             smallint    NOT NULL DEFAULT 0,
    service              text        NOT NULL DEFAULT '',
    model                text        NOT NULL DEFAULT '',
    labels               jsonb       NOT NULL DEFAULT '{}'::jsonb,
    title                text        NOT NULL DEFAULT '',
    description          text        NOT NULL DEFAULT '',
    assignees            text[]      NOT NULL DEFAULT '{}',
    -- The fingerprint of the alert that opened it: any other attached alert was grouped (stats).
    first_fingerprint    text        NOT NULL DEFAULT '',
    -- create_time and update_time fall back to the write time when the message has none.
    create_time          timestamptz NOT NULL,
    update_time          timestamptz NOT NULL,
    acknowledge_time     timestamptz,
    resolve_time         timestamptz,
    next_escalation_time timestamptz,
    version              bigint      NOT NULL,
    -- request_id of the update that made this version: its retry answers the stored incident.
    last_request_id      text        NOT NULL DEFAULT '',
    body                 bytea       NOT NULL,
    PRIMARY KEY (tenant_id, incident_id)
);
-- At most one TRIGGERED (1) or ACKNOWLEDGED (2) incident per group key, under any concurrency.
CREATE UNIQUE INDEX incidents_open_group_key ON incidents (tenant_id, group_key) WHERE state IN (1, 2);
CREATE INDEX incidents_create_idx ON incidents (tenant_id, create_time DESC, incident_id DESC);
CREATE INDEX incidents_update_idx ON incidents (tenant_id, update_time);
CREATE INDEX incidents_escalation_idx ON incidents (tenant_id, next_escalation_time, incident_id)
    WHERE next_escalation_time IS NOT NULL;
CREATE INDEX incidents_state_idx ON incidents (tenant_id, state, create_time DESC);
CREATE INDEX incidents_service_model_idx ON incidents (tenant_id, service, model, create_time DESC);
CREATE INDEX incidents_labels_idx ON incidents USING gin (labels jsonb_path_ops);
CREATE INDEX incidents_assignees_idx ON incidents USING gin (assignees);

CREATE TABLE timeline_entries (
    tenant_id   text        NOT NULL,
    entry_id    text        NOT NULL,
    incident_id text        NOT NULL,
    -- Insertion order: entries at the same event_time list in the order they were written.
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    event_time  timestamptz NOT NULL,
    kind        smallint    NOT NULL,
    to_value    text        NOT NULL DEFAULT '',
    attributes  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    body        bytea       NOT NULL,
    PRIMARY KEY (tenant_id, entry_id),
    FOREIGN KEY (tenant_id, incident_id) REFERENCES incidents (tenant_id, incident_id)
);
CREATE INDEX timeline_incident_idx ON timeline_entries (tenant_id, incident_id, event_time, seq);
CREATE INDEX timeline_kind_time_idx ON timeline_entries (tenant_id, kind, event_time);

CREATE TABLE silences (
    tenant_id   text        NOT NULL,
    silence_id  text        NOT NULL,
    start_time  timestamptz NOT NULL,
    end_time    timestamptz NOT NULL,
    create_time timestamptz NOT NULL,
    update_time timestamptz NOT NULL,
    body        bytea       NOT NULL,
    PRIMARY KEY (tenant_id, silence_id),
    CHECK (end_time > start_time)
);
CREATE INDEX silences_create_idx ON silences (tenant_id, create_time DESC, silence_id DESC);
CREATE INDEX silences_end_idx ON silences (tenant_id, end_time);

-- Policies of five kinds (storage.v1.PolicyKind); names unique per kind within a tenant.
CREATE TABLE policies (
    tenant_id       text        NOT NULL,
    kind            smallint    NOT NULL,
    policy_id       text        NOT NULL,
    name            text        NOT NULL,
    -- Routing rules' evaluation order; 0 for the other kinds.
    sort_order      integer     NOT NULL DEFAULT 0,
    version         bigint      NOT NULL,
    create_time     timestamptz NOT NULL,
    update_time     timestamptz NOT NULL,
    last_request_id text        NOT NULL DEFAULT '',
    body            bytea       NOT NULL,
    PRIMARY KEY (tenant_id, kind, policy_id),
    CONSTRAINT policies_name_key UNIQUE (tenant_id, kind, name)
);
CREATE INDEX policies_order_idx ON policies (tenant_id, kind, sort_order, name);

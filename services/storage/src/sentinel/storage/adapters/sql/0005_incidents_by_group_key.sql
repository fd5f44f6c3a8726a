-- Incidents of one group key, newest first: the lookup of every new alert's placement (its open
-- incident, else the newest resolved one). Without it that lookup walked every incident of the
-- tenant (incidents_state_idx) to find none for a new group key.
CREATE INDEX incidents_group_key_idx ON incidents (tenant_id, group_key, create_time DESC, incident_id DESC);

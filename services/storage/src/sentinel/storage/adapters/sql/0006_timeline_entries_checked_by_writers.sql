-- Timeline entries without the foreign key to incidents: every path that writes entries already
-- ensures their incident exists (create and update write entries of the incident they write, in
-- the same transaction, and validation refuses entries of another incident; AppendTimeline reads
-- the incidents FOR KEY SHARE and refuses missing ones; ApplyAlertChanges inserts only entries
-- whose incident exists), and incidents are never deleted. The key's per-row check, a KEY SHARE
-- lock on the incident row (a MultiXact as soon as two transactions hold it), cost about half of
-- every entry insert, and an entry is written for every repeat of an alert.
ALTER TABLE timeline_entries DROP CONSTRAINT timeline_entries_tenant_id_incident_id_fkey;

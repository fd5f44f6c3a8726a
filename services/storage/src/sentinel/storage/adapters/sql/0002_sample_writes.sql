-- Sample writes and queries (issue 3).
--
-- Index of samples, decided by measurement (bench/ingest_ceiling.py; 2 vCPUs, PostgreSQL 18, one
-- writer, binary COPY built from NumPy, one transaction per batch, into the partitioned parent):
--                                   batches of 1000     batches of 10000
--   BRIN on time only:              464k rows/s         1.50M rows/s
--   plus btree (series_id, time):   264k rows/s         0.47M rows/s
-- (rows of 1000 random series; encoding costs 0.02-0.03 µs/row of that.)
-- A btree on the partition being written costs 43% of COPY throughput at 1000-row batches and 69% at 10000, so the partitioned table
-- keeps BRIN on time only (0001). Queries select by series as well as time, so once a day is over
-- the storage service builds a btree (series_id, time) on that day's partition alone
-- (CREATE INDEX CONCURRENTLY, `<partition>_series_time_idx`): writes to today's partition stay
-- at BRIN speed, queries over closed days use the btree, and only today's rows are found through
-- BRIN ranges.

-- Sample-time extent of each series, for ListSeries; maintained with a bounded lag (flushed by
-- the storage service's maintenance loop), never lowered by retention.
ALTER TABLE series
    ADD COLUMN first_sample_time timestamptz,
    ADD COLUMN last_sample_time  timestamptz;

-- Identity of this database, so that cached series ids (Redis) of one database are never used
-- for another one (a re-created database gets a new id, hence new cache keys).
CREATE TABLE storage_instance (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    instance_id uuid    NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO storage_instance DEFAULT VALUES;

-- The lake's history, newest first (the journal operation): each snapshot with the op that made it, the dataset or
-- corpus, rows added and removed, and who (origin, profile, workflow run).
-- SELECT snapshot_id, op, dataset, rows_added, origin FROM journal(dataset := 'workers');
CREATE OR REPLACE MACRO journal(dataset := NULL, corpus := NULL, op := NULL, since_snapshot := NULL, "limit" := 100)
    AS TABLE
    SELECT unnest(system.main.lh_journal(system.main.getvariable('lh_profile'), dataset, corpus, op, since_snapshot, "limit"), recursive := true);

-- Rows inserted, deleted and updated in a dataset after a snapshot (the dataset.changes operation); row as JSON.
-- SELECT snapshot_id, change_type, "row"->>'name' FROM dataset_changes('workers', 12);
CREATE OR REPLACE MACRO dataset_changes(dataset, since_snapshot := 0, until_snapshot := NULL, "limit" := 10000)
    AS TABLE
    SELECT unnest(system.main.lh_dataset_changes(system.main.getvariable('lh_profile'), dataset, since_snapshot, until_snapshot, "limit"), recursive := true);

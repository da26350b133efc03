-- Schedules (cron in a time zone, claimed per occurrence) and agents' folders (typed tables).
-- Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE schedules (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT UNIQUE,
    workspace        TEXT   NOT NULL,
    agent            TEXT   NOT NULL,
    role             TEXT,
    assignment       TEXT   NOT NULL,
    task             TEXT   NOT NULL,
    cron             TEXT   NOT NULL,
    timezone         TEXT   NOT NULL,
    description      TEXT   NOT NULL,
    catch_up         TEXT   NOT NULL,
    paused           INTEGER NOT NULL DEFAULT 0,
    next_run_at      INTEGER,
    last_run_at      INTEGER,
    created_by       TEXT   NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE paused = 0 AND next_run_at IS NOT NULL;

CREATE TABLE schedule_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id   INTEGER NOT NULL,
    occurrence_at INTEGER NOT NULL,
    ran_at        INTEGER NOT NULL,
    trigger       TEXT   NOT NULL,
    agent         TEXT   NOT NULL,
    assignment    TEXT   NOT NULL,
    thread_id     INTEGER,
    UNIQUE (schedule_id, occurrence_at, trigger)
);
CREATE INDEX schedule_runs_by_schedule ON schedule_runs (schedule_id, id);

CREATE TABLE folders (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    agent      TEXT   NOT NULL,
    agent_key  TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    name_key   TEXT   NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (agent_key, name_key)
);

CREATE TABLE folder_columns (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    folder_id INTEGER NOT NULL REFERENCES folders (id),
    name      TEXT   NOT NULL,
    name_key  TEXT   NOT NULL,
    kind      TEXT   NOT NULL,
    allowed   TEXT,
    position  INTEGER NOT NULL,
    UNIQUE (folder_id, name_key)
);

CREATE TABLE folder_entries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    folder_id  INTEGER NOT NULL REFERENCES folders (id),
    data       TEXT   NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX folder_entries_by_folder ON folder_entries (folder_id, id);

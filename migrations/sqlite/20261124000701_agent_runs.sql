-- Agent runs (durable jobs claimed with a lease, every step recorded) and the cost ledger
-- (one row per model call). Times are milliseconds since the Unix epoch (UTC); money is
-- integer micro-dollars.

CREATE TABLE agent_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace     TEXT    NOT NULL,
    agent         TEXT    NOT NULL,
    task          TEXT    NOT NULL,
    trigger_kind  TEXT    NOT NULL,
    requested_by  TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    result        TEXT,
    error         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    thread_id     INTEGER,
    parent_id     INTEGER,
    feedback      TEXT,
    source_key    TEXT,
    lease_owner   TEXT,
    lease_until   INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX agent_runs_claim ON agent_runs (status, lease_until);
CREATE INDEX agent_runs_thread ON agent_runs (thread_id);
-- The thread an event's run came from (`inbound:12:rule:0`): one run per such thread.
CREATE UNIQUE INDEX agent_runs_source_key ON agent_runs (source_key);
CREATE INDEX agent_runs_workspace ON agent_runs (workspace, id);

CREATE TABLE agent_run_steps (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  INTEGER NOT NULL REFERENCES agent_runs (id),
    at      INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    detail  TEXT    NOT NULL
);
CREATE INDEX agent_run_steps_run ON agent_run_steps (run_id, id);

CREATE TABLE model_calls (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id         INTEGER,
    workspace      TEXT    NOT NULL,
    agent          TEXT    NOT NULL,
    provider       TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    input_tokens   INTEGER NOT NULL,
    output_tokens  INTEGER NOT NULL,
    cost_micros    INTEGER NOT NULL,
    at             INTEGER NOT NULL,
    day            TEXT    NOT NULL,
    month          TEXT    NOT NULL
);
CREATE INDEX model_calls_workspace_month ON model_calls (workspace, month);
CREATE INDEX model_calls_agent_month ON model_calls (agent, month);

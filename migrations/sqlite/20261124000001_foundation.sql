-- Foundation: the To Do inbox, its audit log and copies, inbound events and the outbox.
-- Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE threads (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace     TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    prev_status   TEXT,
    origin        TEXT    NOT NULL,
    agent         TEXT,
    title         TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    action        TEXT,
    approvers     TEXT    NOT NULL,
    expires_at    INTEGER,
    timeout_route TEXT    NOT NULL,
    decided_by    TEXT,
    reason        TEXT,
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX threads_by_workspace ON threads (workspace, status, id);
CREATE INDEX threads_by_status ON threads (status, id);
CREATE INDEX threads_expiring ON threads (expires_at) WHERE status = 'open' AND expires_at IS NOT NULL;

CREATE TABLE thread_replies (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id INTEGER NOT NULL REFERENCES threads (id),
    author    TEXT    NOT NULL,
    front     TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX thread_replies_by_thread ON thread_replies (thread_id, id);

CREATE TABLE thread_approvals (
    thread_id INTEGER NOT NULL REFERENCES threads (id),
    user_name TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (thread_id, user_name)
);

CREATE TABLE thread_copies (
    thread_id   INTEGER NOT NULL REFERENCES threads (id),
    destination TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    PRIMARY KEY (thread_id, destination)
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    front     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX audit_log_by_thread ON audit_log (thread_id, id);

CREATE TABLE inbound (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    source          TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL UNIQUE,
    actor           TEXT    NOT NULL,
    conversation    TEXT    NOT NULL,
    content         TEXT    NOT NULL,
    received_at     INTEGER NOT NULL,
    processed_at    INTEGER,
    response        TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     INTEGER
);
CREATE INDEX inbound_unprocessed ON inbound (source, id) WHERE processed_at IS NULL;

CREATE TABLE outbox (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    destination         TEXT    NOT NULL,
    front               TEXT    NOT NULL,
    payload             TEXT    NOT NULL,
    state               TEXT    NOT NULL DEFAULT 'pending',
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER NOT NULL,
    lease_owner         TEXT,
    lease_until         INTEGER,
    last_error          TEXT,
    platform_message_id TEXT,
    created_at          INTEGER NOT NULL,
    delivered_at        INTEGER
);
CREATE INDEX outbox_pending_by_destination ON outbox (destination, id) WHERE state = 'pending';
CREATE INDEX outbox_pending_due ON outbox (next_attempt_at, id) WHERE state = 'pending';

-- Files people send in chat or upload (issue: knowledge from where people are): each is a
-- durable learn job (claimed with a lease, its bytes kept until it ends) and then a source of
-- its workspace's knowledge, listed by /sources and removed by /forget.
CREATE TABLE knowledge_sources (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace        TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    title            TEXT    NOT NULL DEFAULT '',
    kind             TEXT    NOT NULL DEFAULT '',
    added_by         TEXT    NOT NULL,
    front            TEXT    NOT NULL,
    size             BIGINT,
    locator          TEXT,
    body             BLOB,
    hash             TEXT,
    text             TEXT,
    status           TEXT    NOT NULL,
    error            TEXT,
    passages         BIGINT  NOT NULL DEFAULT 0,
    done             BIGINT  NOT NULL DEFAULT 0,
    answer_to        TEXT,
    progress_message TEXT,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    lease_until      BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX knowledge_sources_queue ON knowledge_sources (status, id);
CREATE INDEX knowledge_sources_by_workspace ON knowledge_sources (workspace, status, name);
CREATE INDEX knowledge_sources_by_hash ON knowledge_sources (workspace, hash);

-- Who added and who forgot which file, and when.
CREATE TABLE knowledge_audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT   NOT NULL,
    source    TEXT   NOT NULL,
    actor     TEXT   NOT NULL,
    front     TEXT   NOT NULL,
    action    TEXT   NOT NULL,
    at        BIGINT NOT NULL
);

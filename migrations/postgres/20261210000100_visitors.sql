-- The customer widget (issue: a web front people enjoy): publishable keys an owner makes for
-- one workspace and one agent, the anonymous visitors who chat with them, and each visitor's
-- conversation. Keys and visitor tokens are stored as SHA-256 hashes only.
CREATE TABLE publishable_keys (
    id         BIGSERIAL PRIMARY KEY,
    key_hash   TEXT    NOT NULL UNIQUE,
    prefix     TEXT    NOT NULL,
    workspace  TEXT    NOT NULL,
    agent      TEXT    NOT NULL,
    origins    TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX publishable_keys_by_prefix ON publishable_keys (prefix);

CREATE TABLE visitors (
    id         BIGSERIAL PRIMARY KEY,
    key_id     BIGINT  NOT NULL REFERENCES publishable_keys (id),
    token_hash TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL
);

-- One row per message, kept once per key (`in:<event>` for what the visitor wrote,
-- `out:<outbox id>` for what reached them).
CREATE TABLE visitor_messages (
    id         BIGSERIAL PRIMARY KEY,
    visitor_id BIGINT  NOT NULL REFERENCES visitors (id),
    msg_key    TEXT    NOT NULL UNIQUE,
    speaker    TEXT    NOT NULL,
    name       TEXT,
    text       TEXT    NOT NULL,
    at         BIGINT  NOT NULL
);
CREATE INDEX visitor_messages_by_visitor ON visitor_messages (visitor_id, id);

-- Telegram front: the polling cursor (next getUpdates offset) and the parts of outbox messages
-- already sent, so a restart neither handles an update twice nor shows a message twice.

CREATE TABLE front_cursors (
    front      TEXT    PRIMARY KEY,
    cursor     INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE front_sent_parts (
    outbox_id  INTEGER NOT NULL,
    part       INTEGER NOT NULL,
    message_id TEXT    NOT NULL,
    sent_at    INTEGER NOT NULL,
    PRIMARY KEY (outbox_id, part)
);

CREATE INDEX thread_copies_by_message ON thread_copies (destination, message_id);

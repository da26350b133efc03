-- Telegram front: the polling cursor (next getUpdates offset) and the parts of outbox messages
-- already sent, so a restart neither handles an update twice nor shows a message twice.

CREATE TABLE front_cursors (
    front      TEXT   PRIMARY KEY,
    cursor     BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE front_sent_parts (
    outbox_id  BIGINT NOT NULL,
    part       BIGINT NOT NULL,
    message_id TEXT   NOT NULL,
    sent_at    BIGINT NOT NULL,
    PRIMARY KEY (outbox_id, part)
);

CREATE INDEX thread_copies_by_message ON thread_copies (destination, message_id);

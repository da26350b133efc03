-- A reply queued for an inbound message carries a key derived from the message, so handling
-- a redelivered message (after a crash between queueing the reply and acknowledging the
-- platform) never queues the reply twice.
ALTER TABLE outbox ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX outbox_dedupe_key ON outbox (dedupe_key);

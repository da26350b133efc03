-- Where a run's answer goes (the chat, channel or web session it was asked in) and the
-- message its answer is streamed into, so a resumed run edits the same message.
ALTER TABLE agent_runs ADD COLUMN answer_to TEXT;
ALTER TABLE agent_runs ADD COLUMN stream_message TEXT;

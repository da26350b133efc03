-- Discord front: places on a front (a Discord thread) that stand for an inbox thread, so a
-- message written there is a reply to it.

CREATE TABLE thread_links (
    front     TEXT   NOT NULL,
    place     TEXT   NOT NULL,
    thread_id BIGINT NOT NULL REFERENCES threads (id),
    PRIMARY KEY (front, place)
);
CREATE INDEX thread_links_by_thread ON thread_links (thread_id);

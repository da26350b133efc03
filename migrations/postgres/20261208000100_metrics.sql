-- Pushed metrics (issue: every workspace's KPIs): each point as sent, with an optional key that
-- makes a push idempotent, and a roll-up per metric and day that every KPI is computed from.
CREATE TABLE metric_points (
    id         BIGSERIAL        PRIMARY KEY,
    workspace  TEXT             NOT NULL,
    name       TEXT             NOT NULL,
    value      DOUBLE PRECISION NOT NULL,
    at         BIGINT           NOT NULL,
    day        TEXT             NOT NULL,
    idem_key   TEXT,
    demo       BIGINT           NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX metric_points_key ON metric_points (workspace, idem_key);
CREATE INDEX metric_points_name ON metric_points (workspace, name, at);

CREATE TABLE metric_daily (
    workspace  TEXT             NOT NULL,
    name       TEXT             NOT NULL,
    day        TEXT             NOT NULL,
    sum        DOUBLE PRECISION NOT NULL,
    count      BIGINT           NOT NULL,
    last_value DOUBLE PRECISION NOT NULL,
    last_at    BIGINT           NOT NULL,
    demo       BIGINT           NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace, name, day)
);

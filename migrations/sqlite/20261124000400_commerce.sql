-- Commerce: shop orders and print-partner fulfilments per workspace, daily KPI roll-ups,
-- and a unique origin key on threads so automation never opens the same thread twice.

ALTER TABLE threads ADD COLUMN origin_key TEXT;
CREATE UNIQUE INDEX threads_origin_key ON threads (origin_key);

CREATE TABLE commerce_orders (
    workspace        TEXT    NOT NULL,
    order_id         TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    day              TEXT    NOT NULL,
    utc_offset_min   INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    currency         TEXT    NOT NULL,
    total_minor      INTEGER NOT NULL,
    refunded_minor   INTEGER NOT NULL,
    financial_status TEXT    NOT NULL,
    PRIMARY KEY (workspace, order_id)
);
CREATE INDEX commerce_orders_by_day ON commerce_orders (workspace, day);
CREATE INDEX commerce_orders_newest ON commerce_orders (workspace, created_at);

CREATE TABLE kpi_daily (
    workspace     TEXT    NOT NULL,
    day           TEXT    NOT NULL,
    currency      TEXT    NOT NULL,
    orders        INTEGER NOT NULL,
    revenue_minor INTEGER NOT NULL,
    paid          INTEGER NOT NULL,
    pending       INTEGER NOT NULL,
    refunds_minor INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace, day, currency)
);

CREATE TABLE fulfilment_orders (
    workspace        TEXT    NOT NULL,
    order_id         TEXT    NOT NULL,
    reference        TEXT,
    status           TEXT,
    max_delivery_day TEXT,
    tracking_url     TEXT,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (workspace, order_id)
);

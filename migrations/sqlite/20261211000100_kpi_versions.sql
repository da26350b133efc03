-- A counter per workspace, raised inside every transaction that changes what its KPI boards
-- read (pushed metrics, commerce roll-ups). A reader keeps the days it decoded while the
-- counter stays the same, in any process: the counter is committed with the change.
CREATE TABLE kpi_versions (
    workspace TEXT   PRIMARY KEY,
    version   BIGINT NOT NULL
);

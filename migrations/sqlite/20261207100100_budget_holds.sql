-- Budget held by model calls in flight, in every process: a budget check counts what is spent
-- plus these, and adds its own in the same transaction (issue: budgets across replicas). A row
-- is removed when its call is charged; one left by a process that died stops counting at
-- expires_at.
CREATE TABLE budget_holds (
    id          TEXT   PRIMARY KEY,
    workspace   TEXT   NOT NULL,
    agent       TEXT   NOT NULL,
    month       TEXT   NOT NULL,
    amount      BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX budget_holds_workspace ON budget_holds (workspace, month);
CREATE INDEX budget_holds_agent ON budget_holds (agent, month);

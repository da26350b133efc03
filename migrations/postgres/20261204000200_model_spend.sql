-- Spend per workspace, agent (lower-case) and month, kept beside the ledger in the same
-- transaction as each call. Budget checks read it with a key lookup instead of summing every
-- call of the month (which grew with the month: a run does four such checks).
CREATE TABLE model_spend (
    workspace    TEXT   NOT NULL,
    agent        TEXT   NOT NULL,
    month        TEXT   NOT NULL,
    cost_micros  BIGINT NOT NULL,
    calls        BIGINT NOT NULL,
    PRIMARY KEY (workspace, agent, month)
);
INSERT INTO model_spend (workspace, agent, month, cost_micros, calls)
SELECT workspace, LOWER(agent), month, CAST(SUM(cost_micros) AS BIGINT), COUNT(*)
FROM model_calls
GROUP BY workspace, LOWER(agent), month;

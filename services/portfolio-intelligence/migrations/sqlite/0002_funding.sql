-- Funding fees (FundingFeeCharged), once per exchange transaction (`SYMBOL|tran_id`).
CREATE TABLE IF NOT EXISTS pi_funding (
    charge_key TEXT NOT NULL PRIMARY KEY,
    symbol TEXT NOT NULL,
    amount TEXT NOT NULL,
    time BIGINT NOT NULL,
    charge TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pi_funding_time ON pi_funding (time);

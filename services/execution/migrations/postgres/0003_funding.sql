-- Funding fees the exchange booked (its income history, FUNDING_FEE), once per symbol and
-- transaction id: the key that keeps a re-read from counting a fee twice (src/funding.rs).
CREATE TABLE exec_funding (
    symbol      TEXT NOT NULL,
    tran_id     TEXT NOT NULL,
    amount      TEXT NOT NULL,
    asset       TEXT NOT NULL,
    time        BIGINT NOT NULL,
    position_id TEXT,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (symbol, tran_id)
);
CREATE INDEX exec_funding_time ON exec_funding (time);

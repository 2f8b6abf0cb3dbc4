-- exit-brain: open plans, learned profiles, closed outcomes, handled events with their outputs.
CREATE TABLE exit_plans (
    position_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE exit_profiles (
    symbol TEXT PRIMARY KEY,
    tp_mult TEXT NOT NULL,
    stop_mult TEXT NOT NULL,
    trades BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE exit_outcomes (
    position_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    entry_price TEXT NOT NULL,
    exit_price TEXT NOT NULL,
    net_pnl TEXT NOT NULL,
    reason TEXT NOT NULL,
    closed_at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX exit_outcomes_symbol ON exit_outcomes (symbol, closed_at);
CREATE TABLE exit_processed (
    event_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    outputs TEXT NOT NULL,
    handled_at BIGINT NOT NULL
);
CREATE INDEX exit_processed_age ON exit_processed (handled_at);

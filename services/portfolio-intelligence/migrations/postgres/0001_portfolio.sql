-- portfolio-intelligence: snapshots, closed trades, open positions as it believes them.
CREATE TABLE IF NOT EXISTS pi_snapshots (
    ts BIGINT NOT NULL PRIMARY KEY,
    equity TEXT NOT NULL,
    wallet_balance TEXT NOT NULL,
    unrealized_pnl TEXT NOT NULL,
    realized_pnl_today TEXT NOT NULL,
    gross_exposure TEXT NOT NULL,
    net_exposure TEXT NOT NULL,
    open_positions BIGINT NOT NULL,
    report TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pi_trades (
    position_id TEXT NOT NULL PRIMARY KEY,
    symbol TEXT NOT NULL,
    model_version TEXT NOT NULL,
    net_pnl TEXT NOT NULL,
    closed_at BIGINT NOT NULL,
    trade TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pi_trades_closed_at ON pi_trades (closed_at);
CREATE TABLE IF NOT EXISTS pi_positions (
    symbol TEXT NOT NULL PRIMARY KEY,
    position TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pi_state (
    name TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

-- execution's tables (PostgreSQL). Decimals are TEXT, times are ms since the epoch.

CREATE TABLE exec_orders (
    client_order_id   TEXT PRIMARY KEY,
    intent_id         TEXT NOT NULL,
    leg               TEXT NOT NULL,
    symbol            TEXT NOT NULL,
    side              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    conditional       BIGINT NOT NULL DEFAULT 0,
    quantity          TEXT NOT NULL,
    price             TEXT,
    trigger_price     TEXT,
    reduce_only       BIGINT NOT NULL DEFAULT 0,
    close_position    BIGINT NOT NULL DEFAULT 0,
    state             TEXT NOT NULL,
    exchange_order_id TEXT,
    filled_qty        TEXT NOT NULL DEFAULT '0',
    avg_price         TEXT NOT NULL DEFAULT '0',
    reason            TEXT,
    message           TEXT,
    exchange_code     BIGINT,
    leverage          BIGINT NOT NULL DEFAULT 0,
    signal            TEXT,
    sent_at           BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX exec_orders_intent ON exec_orders (intent_id);
CREATE INDEX exec_orders_state ON exec_orders (state);

CREATE TABLE exec_fills (
    symbol          TEXT NOT NULL,
    trade_id        BIGINT NOT NULL,
    client_order_id TEXT NOT NULL,
    side            TEXT NOT NULL,
    qty             TEXT NOT NULL,
    price           TEXT NOT NULL,
    fee             TEXT NOT NULL,
    fee_asset       TEXT NOT NULL,
    realized_pnl    TEXT NOT NULL,
    trade_time      BIGINT NOT NULL,
    PRIMARY KEY (symbol, trade_id)
);

CREATE TABLE exec_positions (
    position_id   TEXT PRIMARY KEY,
    symbol        TEXT NOT NULL,
    side          TEXT NOT NULL,
    state         TEXT NOT NULL,
    quantity      TEXT NOT NULL,
    entry_price   TEXT NOT NULL,
    max_quantity  TEXT NOT NULL,
    realized_pnl  TEXT NOT NULL,
    fees          TEXT NOT NULL,
    exit_qty      TEXT NOT NULL,
    exit_notional TEXT NOT NULL,
    leverage      BIGINT NOT NULL,
    intent_id     TEXT NOT NULL,
    signal        TEXT,
    opened_at     BIGINT NOT NULL,
    closed_at     BIGINT
);
CREATE UNIQUE INDEX exec_positions_one_open_per_symbol ON exec_positions (symbol) WHERE state = 'OPEN';

CREATE TABLE exec_closed_trades (
    position_id   TEXT PRIMARY KEY,
    symbol        TEXT NOT NULL,
    side          TEXT NOT NULL,
    max_quantity  TEXT NOT NULL,
    entry_price   TEXT NOT NULL,
    exit_price    TEXT NOT NULL,
    realized_pnl  TEXT NOT NULL,
    fees          TEXT NOT NULL,
    net_pnl       TEXT NOT NULL,
    opened_at     BIGINT NOT NULL,
    closed_at     BIGINT NOT NULL,
    reason        TEXT NOT NULL,
    signal_id     TEXT,
    model         TEXT,
    model_version TEXT,
    confidence    DOUBLE PRECISION,
    features      TEXT
);

CREATE TABLE exec_risk_state (
    id         BIGINT PRIMARY KEY,
    book       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE exec_processed_events (
    event_id     TEXT PRIMARY KEY,
    processed_at BIGINT NOT NULL
);

CREATE TABLE exec_outbox (
    event_id   TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    type_name  TEXT NOT NULL,
    v          BIGINT NOT NULL,
    ts         BIGINT NOT NULL,
    corr       TEXT NOT NULL,
    data       BYTEA NOT NULL
);

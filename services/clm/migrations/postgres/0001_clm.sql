-- clm's tables. Decimals are TEXT, times are ms since the epoch. Same text for SQLite and
-- PostgreSQL (BIGINT/TEXT only).

CREATE TABLE clm_candles (
    symbol       TEXT NOT NULL,
    open_time    BIGINT NOT NULL,
    open         TEXT NOT NULL,
    high         TEXT NOT NULL,
    low          TEXT NOT NULL,
    close        TEXT NOT NULL,
    volume       TEXT NOT NULL,
    quote_volume TEXT NOT NULL,
    trades       BIGINT NOT NULL,
    PRIMARY KEY (symbol, open_time)
);

CREATE TABLE clm_signals (
    event_id      TEXT PRIMARY KEY,
    symbol        TEXT NOT NULL,
    action        TEXT NOT NULL,
    confidence    TEXT NOT NULL,
    model         TEXT NOT NULL,
    model_version TEXT NOT NULL,
    candle_time   BIGINT NOT NULL,
    features      TEXT NOT NULL
);
CREATE INDEX clm_signals_version ON clm_signals (model_version, candle_time);

CREATE TABLE clm_trades (
    position_id   TEXT PRIMARY KEY,
    symbol        TEXT NOT NULL,
    side          TEXT NOT NULL,
    net_pnl       TEXT NOT NULL,
    fees          TEXT NOT NULL,
    opened_at     BIGINT NOT NULL,
    closed_at     BIGINT NOT NULL,
    reason        TEXT NOT NULL,
    model_version TEXT,
    signal        TEXT
);

-- The registry: one row per trained version, deployed or not.
CREATE TABLE clm_models (
    version      TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    artifact_uri TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    status       TEXT NOT NULL,
    deployed_at  BIGINT,
    metadata     TEXT NOT NULL
);

-- Every gate decision with its numbers.
CREATE TABLE clm_decisions (
    run_id      TEXT PRIMARY KEY,
    decided_at  BIGINT NOT NULL,
    challenger  TEXT NOT NULL,
    champion    TEXT,
    promoted    BIGINT NOT NULL,
    report      TEXT NOT NULL
);

-- Scheduler state and the outbox of deployment events (key/value JSON).
CREATE TABLE clm_state (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

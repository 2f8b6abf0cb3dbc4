//! `qt-runtime` is what every Quantum Trader binary shares, so that each `main.rs` only loads its
//! config, starts telemetry, builds its app and runs it until shutdown:
//!
//! - [`config`]: defaults → TOML file named by `QT_CONFIG` → `QT_*` environment variables,
//!   validated at start; a bad value exits with code 2 and a message naming the setting;
//! - [`telemetry`]: `tracing` logs as JSON (for `docker compose logs`) or pretty (for a
//!   terminal), optional OTLP trace export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set;
//! - [`service`]: the bus, the consumer groups, the HTTP server with `/health/live`,
//!   `/health/ready` and `/metrics`, periodic stream trimming, and SIGTERM/SIGINT shutdown.
//!
//! It knows nothing of trading: services bring their handlers and settings.

pub mod config;
pub mod service;
pub mod telemetry;

pub use config::{CommonConfig, Config, ConfigError, LogFormat, Shard, load_toml_file};
pub use service::{Service, StartRefused, load_or_exit, run, run_main, run_with};

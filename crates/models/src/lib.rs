//! `qt-models` holds the trading models of Quantum Trader behind one [`Model`] trait, their
//! artifacts, the labels (each row's long and short run through the live exit plan) and the
//! training pipeline.
//!
//! Models: [`MomentumModel`] (the baseline rule on the 24h change), [`GbdtModel`] (two
//! one-vs-rest gradient-boosted tree models from `forust-ml`: "a long nets a gain under the live
//! exits" and "a short does";
//! trained models decide by expected value ([`ev`]): the scores are calibrated on a validation
//! slice into expected net returns ([`calibration`]), and an entry is taken only when its
//! expected return after costs clears a margin chosen on that slice — HOLD otherwise; it
//! predicts on its trees compiled into flat arrays, bit for bit forust's scores) and [`EnsembleModel`] (members in priority order; a member
//! that said HOLD for more than 80% of a rolling window hands over to the next; it reports the
//! signal mix), and [`TemporalModel`] (a small causal convolution network over a symbol's last
//! 32 feature vectors, deciding by the same expected-value rule; see [`temporal`]),
//! [`TrendModel`] (time-series momentum on hourly closes, normalized by volatility; a fixed
//! rule, see [`trend`]) and [`MetaModel`] (the gbdt as a meta-labeler deciding which of the
//! trend rule's trades to take, by the same expected-value rule; see [`meta`]). Every model is saved and loaded as one JSON [`ModelArtifact`] that carries its
//! version, feature list, training range and metrics.
//!
//! Training ([`train`]) builds a dataset from candles with [`qt_features::batch`] (the same code
//! as live) and [`labels::exit_outcomes`], splits it chronologically with a purge gap, fits,
//! evaluates and returns an artifact and a report.
//!
//! It must never know about Redis, HTTP, SQL, an async runtime or the wall clock: the caller
//! passes candles in and gets signals, artifacts and reports out.

mod artifact;
pub mod calibration;
pub mod cli;
pub mod dataset;
mod ensemble;
mod error;
pub mod ev;
pub mod exit_choice;
mod flat;
mod gbdt;
pub mod labels;
pub mod meta;
pub mod metrics;
mod model;
mod momentum;
pub mod stack;
pub mod temporal;
pub mod train;
pub mod trend;

pub use artifact::{ARTIFACT_FORMAT, ModelArtifact, ModelKind, TrainingRange, build_model};
pub use ensemble::{EnsembleConfig, EnsembleModel, SignalMix};
pub use error::ModelError;
pub use ev::{EvRule, EvSettings, TradeCosts};
pub use exit_choice::{ExitChoice, ExitGrid, ExitTrial};
pub use gbdt::{GbdtModel, GbdtParams};
pub use labels::LabelConfig;
pub use meta::MetaModel;
pub use model::{Model, NoModel, Signal};
pub use momentum::{MomentumConfig, MomentumModel};
pub use qt_events::SignalAction;
pub use temporal::{TemporalModel, TemporalParams};
pub use trend::{TrendConfig, TrendModel};

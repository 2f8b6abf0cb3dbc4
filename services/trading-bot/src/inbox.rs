//! The bus handler of `positions`, `orders`, `models` and `control`: it hands each fact to the
//! bot's task and acknowledges only once the task has applied it. A `ModelDeployed` or
//! `ModelRolledBack` is loaded here (off the bot's task) and swapped in between two candles.

use std::collections::{HashSet, VecDeque};

use qt_bus::{Delivery, Handler, HandlerError, Outcome};
use qt_events::{Event, ModelArtifactRef};
use qt_models::Model;
use tokio::sync::{mpsc, oneshot};

use crate::model::load_ref;

/// What the bot's task is asked to apply.
#[derive(Debug)]
pub enum Command {
    /// A fact from `positions`, `orders` or `control`.
    Fact(Box<qt_events::Envelope>),
    /// A model to run from the next candle on, and the `models` entry that named it.
    Swap(Box<dyn Model>, String),
}

/// A command and the channel its application is confirmed on: `Err` is a refusal that no
/// retry can change (a model that needs funding rates the exchange cannot give), and the entry
/// is dead-lettered with it.
pub type Request = (Command, oneshot::Sender<Result<(), String>>);

/// The handler; clone one per consumed stream.
#[derive(Debug, Clone)]
pub struct Inbox {
    tx: mpsc::Sender<Request>,
    seen: VecDeque<String>,
    seen_set: HashSet<String>,
}

const SEEN_CAP: usize = 10_000;

impl Inbox {
    pub(crate) fn new(tx: mpsc::Sender<Request>) -> Self {
        Self {
            tx,
            seen: VecDeque::new(),
            seen_set: HashSet::new(),
        }
    }

    fn remember(&mut self, id: &str) {
        if self.seen_set.insert(id.to_owned()) {
            self.seen.push_back(id.to_owned());
            if self.seen.len() > SEEN_CAP
                && let Some(old) = self.seen.pop_front()
            {
                self.seen_set.remove(&old);
            }
        }
    }

    async fn apply(&self, cmd: Command) -> Result<(), HandlerError> {
        let (done, applied) = oneshot::channel();
        self.tx
            .send((cmd, done))
            .await
            .map_err(|_| HandlerError::Transient("the bot's task is not running".into()))?;
        applied
            .await
            .map_err(|_| HandlerError::Transient("the bot's task stopped before applying".into()))?
            .map_err(HandlerError::Permanent)
    }

    async fn load(artifact: &ModelArtifactRef) -> Result<Box<dyn Model>, HandlerError> {
        let a = artifact.clone();
        let loaded = tokio::task::spawn_blocking(move || load_ref(&a))
            .await
            .map_err(|e| HandlerError::Transient(format!("model loading task failed: {e}")))?;
        match loaded {
            Ok(m) => {
                if m.version() != artifact.model_version {
                    tracing::warn!(deployed = %artifact.model_version, artifact = %m.version(), "the artifact's version differs from the deployment's; using the artifact's");
                }
                Ok(m)
            }
            Err(e) if e.is_retryable() => Err(HandlerError::Transient(e.to_string())),
            Err(e) => Err(HandlerError::Permanent(e.to_string())),
        }
    }
}

impl Handler for Inbox {
    async fn handle(&mut self, delivery: &Delivery) -> Result<Outcome, HandlerError> {
        let env = &delivery.envelope;
        if self.seen_set.contains(&env.id) {
            return Ok(Outcome::done());
        }
        let cmd = match &env.event {
            Event::ModelDeployed(d) => {
                tracing::info!(event_id = %env.id, version = %d.artifact.model_version, "model deployed");
                Command::Swap(Self::load(&d.artifact).await?, delivery.entry_id.clone())
            }
            Event::ModelRolledBack(r) => {
                tracing::info!(event_id = %env.id, from = %r.from_version, to = %r.artifact.model_version, reason = %r.reason, "model rolled back");
                Command::Swap(Self::load(&r.artifact).await?, delivery.entry_id.clone())
            }
            Event::PositionOpened(_)
            | Event::PositionChanged(_)
            | Event::PositionClosed(_)
            | Event::OrderRejected(_)
            | Event::OrderCancelled(_)
            | Event::OrderExpired(_)
            | Event::SetKillSwitch(_)
            | Event::ResumeTrading(_)
            | Event::PortfolioSnapshot(_) => Command::Fact(Box::new(env.clone())),
            _ => return Ok(Outcome::done()),
        };
        self.apply(cmd).await?;
        self.remember(&env.id);
        Ok(Outcome::done())
    }
}

//! The envelope: the fields of one stream entry.
//!
//! In Redis an entry's fields are `id, type, v, ts, src, corr, traceparent, sym, data`, all
//! readable in `redis-cli` but `data`, the payload as MessagePack with named fields.

use crate::clock::Clock;
use crate::event::{DecodeError, Event};
use crate::ids;

/// A stream entry's fields as owned name/value pairs.
pub type FieldMap = Vec<(String, Vec<u8>)>;

/// Why fields could not be read as an envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("missing field {0:?}")]
    MissingField(&'static str),
    #[error("field {field:?} is not valid: {detail}")]
    BadField { field: &'static str, detail: String },
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// An event with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Event id: a UUIDv7, or derived from its cause where a redelivery could repeat the fact.
    pub id: String,
    /// Schema version of the payload as written.
    pub v: u16,
    /// When it was made, ms since the epoch.
    pub ts: i64,
    /// The service that made it.
    pub src: String,
    /// Correlation id: the id of the first event of the chain.
    pub corr: String,
    /// W3C trace context of the span that made it.
    pub traceparent: Option<String>,
    /// The symbol it is about, where one applies.
    pub sym: Option<String>,
    pub event: Event,
}

impl Envelope {
    /// A new envelope with a fresh id that starts its own correlation chain.
    pub fn new(event: Event, src: &str, clock: &dyn Clock) -> Self {
        let id = ids::new_event_id();
        Self {
            corr: id.clone(),
            id,
            v: event.version(),
            ts: clock.now_ms(),
            src: src.to_owned(),
            traceparent: None,
            sym: event.symbol().map(str::to_owned),
            event,
        }
    }

    /// Replaces the id, e.g. with [`ids::derived_event_id`] for a fact that may be repeated.
    pub fn with_id(mut self, id: String) -> Self {
        if self.corr == self.id {
            self.corr.clone_from(&id);
        }
        self.id = id;
        self
    }

    /// Makes this envelope part of `cause`'s chain: same correlation id and trace.
    pub fn caused_by(mut self, cause: &Envelope) -> Self {
        self.corr.clone_from(&cause.corr);
        self.traceparent.clone_from(&cause.traceparent);
        self
    }

    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    pub fn type_name(&self) -> &'static str {
        self.event.type_name()
    }

    /// The fields to `XADD`, in a stable order.
    pub fn to_fields(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut f = Vec::with_capacity(9);
        f.push(("id", self.id.as_bytes().to_vec()));
        f.push(("type", self.event.type_name().as_bytes().to_vec()));
        f.push(("v", self.v.to_string().into_bytes()));
        f.push(("ts", self.ts.to_string().into_bytes()));
        f.push(("src", self.src.as_bytes().to_vec()));
        f.push(("corr", self.corr.as_bytes().to_vec()));
        if let Some(tp) = &self.traceparent {
            f.push(("traceparent", tp.as_bytes().to_vec()));
        }
        if let Some(sym) = &self.sym {
            f.push(("sym", sym.as_bytes().to_vec()));
        }
        f.push(("data", self.event.encode_data()));
        f
    }

    /// Reads an envelope from an entry's fields. Fields it does not know are ignored.
    pub fn from_fields<'a, I>(fields: I) -> Result<Self, EnvelopeError>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    {
        let (mut id, mut ty, mut v, mut ts, mut src, mut corr, mut tp, mut sym, mut data) =
            (None, None, None, None, None, None, None, None, None);
        for (name, value) in fields {
            match name {
                b"id" => id = Some(value),
                b"type" => ty = Some(value),
                b"v" => v = Some(value),
                b"ts" => ts = Some(value),
                b"src" => src = Some(value),
                b"corr" => corr = Some(value),
                b"traceparent" => tp = Some(value),
                b"sym" => sym = Some(value),
                b"data" => data = Some(value),
                _ => {}
            }
        }
        let text = |field: &'static str, value: Option<&[u8]>| -> Result<String, EnvelopeError> {
            let value = value.ok_or(EnvelopeError::MissingField(field))?;
            String::from_utf8(value.to_vec()).map_err(|_| EnvelopeError::BadField {
                field,
                detail: "not UTF-8".into(),
            })
        };
        let number = |field: &'static str, value: Option<&[u8]>| -> Result<i64, EnvelopeError> {
            let s = text(field, value)?;
            s.parse::<i64>().map_err(|_| EnvelopeError::BadField {
                field,
                detail: format!(
                    "{:?} is not an integer",
                    s.chars().take(32).collect::<String>()
                ),
            })
        };
        let ty = text("type", ty)?;
        let v = u16::try_from(number("v", v)?).map_err(|_| EnvelopeError::BadField {
            field: "v",
            detail: "out of range".into(),
        })?;
        let data = data.ok_or(EnvelopeError::MissingField("data"))?;
        let event = Event::decode(&ty, v, data)?;
        let id = text("id", id)?;
        Ok(Self {
            corr: match corr {
                Some(_) => text("corr", corr)?,
                None => id.clone(),
            },
            id,
            v,
            ts: number("ts", ts)?,
            src: text("src", src)?,
            traceparent: tp.map(|_| text("traceparent", tp)).transpose()?,
            sym: sym.map(|_| text("sym", sym)).transpose()?,
            event,
        })
    }

    /// The envelope as JSON, for people: metadata plus the payload under `data`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "type": self.type_name(),
            "v": self.v,
            "ts": self.ts,
            "src": self.src,
            "corr": self.corr,
            "traceparent": self.traceparent,
            "sym": self.sym,
            "data": self.event.data_json(),
        })
    }
}

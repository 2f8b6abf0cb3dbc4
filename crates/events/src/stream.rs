//! The streams of the system and their retention.

use std::fmt;
use std::time::Duration;

/// Every stream of the system (DESIGN.md, "Streams and events").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    Market,
    Signals,
    Intents,
    Orders,
    Positions,
    Portfolio,
    Models,
    Control,
    Alerts,
    Context,
    Dlq,
}

/// How much of a stream is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// High-rate data: trimmed approximately to this many entries on every append. A consumer
    /// that falls this far behind loses the oldest entries (they are stale by then).
    MaxLen(usize),
    /// Commands and facts that must not be lost: entries older than `min_age` are trimmed, but
    /// never one that any group has not yet delivered and acknowledged, and nothing at all while
    /// the stream has no group.
    KeepUnacked { min_age: Duration },
}

impl Stream {
    pub const ALL: [Stream; 11] = [
        Stream::Market,
        Stream::Signals,
        Stream::Intents,
        Stream::Orders,
        Stream::Positions,
        Stream::Portfolio,
        Stream::Models,
        Stream::Control,
        Stream::Alerts,
        Stream::Context,
        Stream::Dlq,
    ];

    /// The name after the prefix, e.g. `market`.
    pub const fn suffix(self) -> &'static str {
        match self {
            Stream::Market => "market",
            Stream::Signals => "signals",
            Stream::Intents => "intents",
            Stream::Orders => "orders",
            Stream::Positions => "positions",
            Stream::Portfolio => "portfolio",
            Stream::Models => "models",
            Stream::Control => "control",
            Stream::Alerts => "alerts",
            Stream::Context => "context",
            Stream::Dlq => "dlq",
        }
    }

    pub fn from_suffix(s: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|st| st.suffix() == s)
    }

    /// The retention policy of this stream.
    pub const fn retention(self) -> Retention {
        const DAY: Duration = Duration::from_secs(86_400);
        match self {
            Stream::Market => Retention::MaxLen(200_000),
            Stream::Signals => Retention::MaxLen(200_000),
            Stream::Portfolio => Retention::MaxLen(50_000),
            Stream::Context => Retention::MaxLen(50_000),
            Stream::Intents
            | Stream::Orders
            | Stream::Positions
            | Stream::Models
            | Stream::Control
            | Stream::Alerts
            | Stream::Dlq => Retention::KeepUnacked {
                min_age: DAY.saturating_mul(7),
            },
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}

/// Stream keys under a configurable prefix (default `qt:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamNames {
    prefix: String,
}

impl Default for StreamNames {
    fn default() -> Self {
        Self::new("qt:")
    }
}

impl StreamNames {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis key of a stream, e.g. `qt:market`.
    pub fn key(&self, stream: Stream) -> String {
        format!("{}{}", self.prefix, stream.suffix())
    }

    /// Any other key the system keeps under the same prefix, e.g. `qt:processed:execution`.
    pub fn aux_key(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// The Redis Cluster hash tag of the prefix (`main` in `qt:{main}:`), if it has one: the
    /// part between its first `{` and the next `}`, when not empty. Redis Cluster hashes only
    /// that part of a key, so every key under such a prefix (streams, dead letters, dedup
    /// marks, cache entries) lives in one slot, and a `MULTI` or a script over several of them
    /// is allowed. Stream suffixes carry no braces, so the prefix decides alone.
    pub fn hash_tag(&self) -> Option<&str> {
        let open = self.prefix.find('{')?;
        let rest = &self.prefix[open + 1..];
        let close = rest.find('}')?;
        Some(&rest[..close]).filter(|t| !t.is_empty())
    }

    /// The stream a key names, if it is one of ours: accepts `qt:market` or a bare `market`.
    pub fn parse(&self, key: &str) -> Option<Stream> {
        Stream::from_suffix(key.strip_prefix(self.prefix.as_str()).unwrap_or(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_prefix_and_parse_back() {
        let names = StreamNames::new("t1:");
        for s in Stream::ALL {
            assert_eq!(names.parse(&names.key(s)), Some(s));
            assert_eq!(names.parse(s.suffix()), Some(s));
        }
        assert_eq!(names.key(Stream::Intents), "t1:intents");
        assert_eq!(names.parse("t1:nope"), None);
    }

    #[test]
    fn the_hash_tag_is_the_prefix_part_redis_cluster_hashes() {
        assert_eq!(StreamNames::new("qt:{main}:").hash_tag(), Some("main"));
        assert_eq!(StreamNames::new("{qt}:").hash_tag(), Some("qt"));
        assert_eq!(StreamNames::new("qt:{a}{b}:").hash_tag(), Some("a"));
        for untagged in ["qt:", "qt:{}:", "qt:{main:", "qt:}main{:"] {
            assert_eq!(StreamNames::new(untagged).hash_tag(), None, "{untagged}");
        }
    }

    #[test]
    fn command_streams_are_never_trimmed_by_length() {
        for s in [
            Stream::Intents,
            Stream::Control,
            Stream::Orders,
            Stream::Positions,
        ] {
            assert!(
                matches!(s.retention(), Retention::KeepUnacked { .. }),
                "{s}"
            );
        }
    }
}

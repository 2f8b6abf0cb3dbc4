//! Parsing of stream replies straight from `redis::Value`, tolerant of deleted entries.

use redis::Value;

use crate::BusError;

/// One stream entry as Redis returned it. `fields` is `None` when the entry is still pending but
/// its payload was trimmed or deleted from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub id: String,
    pub fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl RawEntry {
    /// The fields as borrowed pairs, for `Envelope::from_fields`.
    pub fn field_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }
}

fn bytes(v: Value) -> Result<Vec<u8>, BusError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        Value::Okay => Ok(b"OK".to_vec()),
        other => Err(BusError::Protocol(format!(
            "expected a string, got {other:?}"
        ))),
    }
}

pub(crate) fn string(v: Value) -> Result<String, BusError> {
    String::from_utf8(bytes(v)?).map_err(|_| BusError::Protocol("non-UTF-8 string".into()))
}

fn items(v: Value) -> Result<Vec<Value>, BusError> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        other => Err(BusError::Protocol(format!(
            "expected an array, got {other:?}"
        ))),
    }
}

/// `[id, [f, v, …]]` or `[id, nil]`.
pub(crate) fn entry(v: Value) -> Result<RawEntry, BusError> {
    let mut parts = items(v)?.into_iter();
    let id = string(
        parts
            .next()
            .ok_or_else(|| BusError::Protocol("entry without id".into()))?,
    )?;
    let fields = match parts.next() {
        None | Some(Value::Nil) => None,
        Some(Value::Map(m)) => Some(
            m.into_iter()
                .map(|(k, v)| Ok((bytes(k)?, bytes(v)?)))
                .collect::<Result<_, BusError>>()?,
        ),
        Some(list) => {
            let flat = items(list)?;
            let mut out = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((bytes(k)?, bytes(v)?));
            }
            Some(out)
        }
    };
    Ok(RawEntry { id, fields })
}

/// A list of entries (`XRANGE`, one stream of `XREADGROUP`).
pub(crate) fn entries(v: Value) -> Result<Vec<RawEntry>, BusError> {
    items(v)?.into_iter().map(entry).collect()
}

/// An `XREADGROUP`/`XREAD` reply for one stream: nil on timeout, else `[[key, entries]]` (RESP2)
/// or `{key: entries}` (RESP3).
pub(crate) fn read_reply(v: Value) -> Result<Vec<RawEntry>, BusError> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::Map(m) => {
            let mut out = Vec::new();
            for (_, es) in m {
                out.extend(entries(es)?);
            }
            Ok(out)
        }
        other => {
            let mut out = Vec::new();
            for stream in items(other)? {
                let mut parts = items(stream)?.into_iter();
                let _key = parts.next();
                if let Some(es) = parts.next() {
                    out.extend(entries(es)?);
                }
            }
            Ok(out)
        }
    }
}

/// An `XAUTOCLAIM … JUSTID` reply: next cursor, claimed ids, ids deleted from the stream.
pub(crate) fn autoclaim_reply(v: Value) -> Result<(String, Vec<String>, Vec<String>), BusError> {
    let mut parts = items(v)?.into_iter();
    let cursor = string(
        parts
            .next()
            .ok_or_else(|| BusError::Protocol("XAUTOCLAIM without cursor".into()))?,
    )?;
    let mut ids = || -> Result<Vec<String>, BusError> {
        items(parts.next().unwrap_or(Value::Nil))?
            .into_iter()
            .map(string)
            .collect()
    };
    let claimed = ids()?;
    let deleted = ids()?;
    Ok((cursor, claimed, deleted))
}

/// Extended `XPENDING` reply: `[[id, consumer, idle, deliveries], …]` as (id, deliveries).
pub(crate) fn pending_counts(v: Value) -> Result<Vec<(String, u64)>, BusError> {
    items(v)?
        .into_iter()
        .map(|row| {
            let mut p = items(row)?.into_iter();
            let id = string(p.next().unwrap_or(Value::Nil))?;
            let _owner = p.next();
            let _idle = p.next();
            let n = match p.next() {
                Some(Value::Int(n)) => u64::try_from(n).unwrap_or(0),
                Some(other) => string(other)?.parse().unwrap_or(0),
                None => 0,
            };
            Ok((id, n))
        })
        .collect()
}

/// Key/value reply (`XINFO` in RESP2 is a flat array, in RESP3 a map) as pairs.
pub(crate) fn kv(v: Value) -> Result<Vec<(String, Value)>, BusError> {
    match v {
        Value::Map(m) => m.into_iter().map(|(k, v)| Ok((string(k)?, v))).collect(),
        other => {
            let flat = items(other)?;
            let mut out = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((string(k)?, v));
            }
            Ok(out)
        }
    }
}

pub(crate) fn list(v: Value) -> Result<Vec<Value>, BusError> {
    items(v)
}

pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

/// A stream id `ms-seq` as numbers, so ids compare in stream order.
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bs(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn read_reply_keeps_deleted_entries_as_none() {
        let v = Value::Array(vec![Value::Array(vec![
            bs("k"),
            Value::Array(vec![
                Value::Array(vec![bs("1-0"), Value::Array(vec![bs("a"), bs("b")])]),
                Value::Array(vec![bs("2-0"), Value::Nil]),
            ]),
        ])]);
        let es = read_reply(v).unwrap();
        assert_eq!(es.len(), 2);
        assert_eq!(
            es[0].fields.as_deref(),
            Some(&[(b"a".to_vec(), b"b".to_vec())][..])
        );
        assert_eq!(es[1].fields, None);
        assert!(read_reply(Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn ids_compare_numerically() {
        assert!(parse_id("10-0") > parse_id("9-5"));
        assert!(parse_id("9-10") > parse_id("9-9"));
        assert_eq!(parse_id("x-1"), None);
    }
}

//! [`SharedCache`]: short-lived values every instance shares, with a lease so one instance
//! refreshes a value while the others wait for it.
//!
//! Keys live under the bus prefix (`<prefix>cache:<name>`). A value is opaque bytes with a
//! Redis TTL; a lease (`SET … NX PX`) says who is fetching it now; a hold (`SET … PX`) says
//! "nobody ask upstream before this expires" (a provider's `Retry-After`). The crate knows nothing
//! of what the values mean (`qt-context` does).

use std::time::Duration;

use crate::conn::Connection;

use crate::{Bus, BusError};

/// Values, leases and holds under `<prefix>cache:`. Cheap to clone.
#[derive(Clone)]
pub struct SharedCache {
    conn: Connection,
    prefix: String,
}

impl std::fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache")
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

impl SharedCache {
    /// A cache on the bus's connection, keys under `<prefix>cache:`.
    pub fn new(bus: &Bus) -> Self {
        Self {
            conn: bus.connection(),
            prefix: bus.names().aux_key("cache:"),
        }
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    /// The value stored under `name`, if it has not expired.
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, BusError> {
        let mut c = self.conn.clone();
        Ok(redis::cmd("GET")
            .arg(self.key("v", name))
            .query_async(&mut c)
            .await?)
    }

    /// Stores `value` under `name` for `ttl`.
    pub async fn put(&self, name: &str, value: &[u8], ttl: Duration) -> Result<(), BusError> {
        let mut c = self.conn.clone();
        let () = redis::cmd("SET")
            .arg(self.key("v", name))
            .arg(value)
            .arg("PX")
            .arg(ms(ttl))
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Takes the lease on `name` for `ttl` unless another holder has it. `token` identifies the
    /// holder so that only it can release the lease.
    pub async fn try_lease(
        &self,
        name: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, BusError> {
        let mut c = self.conn.clone();
        let r: Option<String> = redis::cmd("SET")
            .arg(self.key("lease", name))
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ms(ttl))
            .query_async(&mut c)
            .await?;
        Ok(r.is_some())
    }

    /// Releases the lease on `name` if `token` still holds it.
    pub async fn release(&self, name: &str, token: &str) -> Result<(), BusError> {
        let mut c = self.conn.clone();
        let _: i64 = redis::Script::new(RELEASE)
            .key(self.key("lease", name))
            .arg(token)
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    /// Whether a lease on `name` is held by anyone.
    pub async fn leased(&self, name: &str) -> Result<bool, BusError> {
        let mut c = self.conn.clone();
        let n: u64 = redis::cmd("EXISTS")
            .arg(self.key("lease", name))
            .query_async(&mut c)
            .await?;
        Ok(n == 1)
    }

    /// Holds `name` for `d`: [`SharedCache::held_for`] reports it to every instance until then.
    /// A longer hold already in place is kept.
    pub async fn hold(&self, name: &str, d: Duration) -> Result<(), BusError> {
        if self.held_for(name).await?.is_some_and(|left| left >= d) {
            return Ok(());
        }
        let mut c = self.conn.clone();
        let () = redis::cmd("SET")
            .arg(self.key("hold", name))
            .arg(1)
            .arg("PX")
            .arg(ms(d))
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// How long `name` is still held, if it is.
    pub async fn held_for(&self, name: &str) -> Result<Option<Duration>, BusError> {
        let mut c = self.conn.clone();
        let left: i64 = redis::cmd("PTTL")
            .arg(self.key("hold", name))
            .query_async(&mut c)
            .await?;
        Ok(u64::try_from(left)
            .ok()
            .filter(|l| *l > 0)
            .map(Duration::from_millis))
    }
}

//! Drop duplicates by event id: apply a Redis effect at most once per id.

use std::time::Duration;

use crate::{Bus, BusError};

/// Marks event ids as processed, atomically with the effect of processing them.
///
/// `apply_once` runs a list of Redis commands and records the id in one Lua script, so a crash
/// can never leave the effect without the mark or the mark without the effect; a redelivered
/// event finds its mark and the commands do not run again. Marks expire after `ttl`, which must
/// exceed the longest time an entry can stay pending.
#[derive(Clone)]
pub struct ProcessedStore {
    bus: Bus,
    prefix: String,
    ttl: Duration,
    script: redis::Script,
}

impl std::fmt::Debug for ProcessedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessedStore")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish()
    }
}

const APPLY_ONCE: &str = r"
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
local i = 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local cmd = {}
  for j = 1, n do cmd[j] = ARGV[i + j] end
  redis.call(unpack(cmd))
  i = i + n + 1
end
return 1
";

impl ProcessedStore {
    /// A store for one consumer group (`<prefix>processed:<group>:<event id>` keys).
    pub fn new(bus: &Bus, group: &str, ttl: Duration) -> Self {
        Self {
            bus: bus.clone(),
            prefix: bus.names().aux_key(&format!("processed:{group}:")),
            ttl,
            script: redis::Script::new(APPLY_ONCE),
        }
    }

    fn key(&self, event_id: &str) -> String {
        format!("{}{}", self.prefix, event_id)
    }

    /// Whether `event_id` was already processed.
    pub async fn seen(&self, event_id: &str) -> Result<bool, BusError> {
        let mut c = self.bus.connection();
        let n: u64 = redis::cmd("EXISTS")
            .arg(self.key(event_id))
            .query_async(&mut c)
            .await?;
        Ok(n == 1)
    }

    /// Runs `commands` (each a command name and its arguments) and marks `event_id`, atomically,
    /// unless it is already marked. Returns whether the commands ran.
    pub async fn apply_once(
        &self,
        event_id: &str,
        commands: &[Vec<String>],
    ) -> Result<bool, BusError> {
        let mut inv = self.script.key(self.key(event_id));
        inv.arg(u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX));
        for c in commands {
            inv.arg(c.len());
            for a in c {
                inv.arg(a.as_str());
            }
        }
        let mut c = self.bus.connection();
        let ran: u64 = inv.invoke_async(&mut c).await?;
        Ok(ran == 1)
    }
}

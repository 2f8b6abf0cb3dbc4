//! Layered configuration: built-in defaults, then the TOML file named by `QT_CONFIG`, then the
//! environment (`QT_REDIS_URL`, `QT_STREAM_PREFIX`, …; a service's own settings as
//! `QT_<SERVICE>__<SETTING>`, e.g. `QT_EXECUTION__MAX_POSITIONS`, or a `[execution]` table in
//! the file).

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line: for `docker compose logs` and log shippers.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

/// Settings every service has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommonConfig {
    /// `QT_REDIS_URL`: `redis://host:port/db`, `rediss://…` (TLS) or `unix:///path/redis.sock`.
    pub redis_url: String,
    /// `QT_REDIS_SENTINELS`: Redis Sentinel nodes, `host:port` separated by commas (default
    /// empty: `redis_url` is the server). When set, the services connect to the master the
    /// Sentinels name for `redis_master_name` and follow a failover; `redis_url` then gives
    /// only the credentials, the database and TLS.
    pub redis_sentinels: String,
    /// `QT_REDIS_MASTER_NAME`: the name the Sentinels monitor the master under (default `qt`).
    pub redis_master_name: String,
    /// `QT_REDIS_CLUSTER`: Redis Cluster seed nodes, `host:port` separated by commas (default
    /// empty: not a cluster). When set, `stream_prefix` must carry a hash tag (`qt:{main}:`)
    /// so that every key of the deployment lives in one slot; `redis_url` then gives only the
    /// credentials and TLS.
    pub redis_cluster: String,
    /// `QT_STREAM_PREFIX`: prefix of every stream key (default `qt:`).
    pub stream_prefix: String,
    /// `QT_HTTP_ADDR`: where health and metrics are served (default `127.0.0.1:<port>`: this
    /// machine only; containers set `0.0.0.0` and publish the port on the host's loopback).
    pub http_addr: SocketAddr,
    /// `QT_LOG_FORMAT`: `json` or `pretty` (default: pretty on a terminal, JSON otherwise).
    pub log_format: Option<LogFormat>,
    /// `QT_LOG_LEVEL`: a `tracing` filter such as `info` or `info,qt_bus=debug`.
    pub log_level: String,
    /// `QT_INSTANCE`: this instance's name; the consumer name is `<service>-<instance>`.
    pub instance: String,
    /// `QT_SHARD`: `i/N`, this instance owns shard i of N of the symbols (default `0/1`: all
    /// of them). Only a service that shards (trading-bot) accepts N above 1.
    pub shard: String,
}

/// A slice of the symbols: shard `index` of `count`. A symbol belongs to the shard that jump
/// consistent hashing (Lamping and Veach) of its hash names (FNV-1a, then MurmurHash3's
/// 64-bit finalizer, which spreads the short, similar names symbols have), so every instance computes
/// the same owner without talking to the others, and going from N to N+1 shards moves only
/// about 1/(N+1) of the symbols (all to the new shard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Every symbol.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// `i/N` with `i < N`, `1 <= N <= 1024`.
    pub fn parse(s: &str) -> Option<Shard> {
        let (i, n) = s.trim().split_once('/')?;
        let (index, count) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
        ((1..=1024).contains(&count) && index < count).then_some(Shard { index, count })
    }

    /// The shard that owns `symbol` among `count`.
    pub fn of(symbol: &str, count: u32) -> u32 {
        // FNV-1a, 64 bits: fixed here so that every build and every instance agrees.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in symbol.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        // Jump consistent hash.
        let (mut b, mut j): (i64, i64) = (-1, 0);
        while j < i64::from(count) {
            b = j;
            h = h.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
            let r = ((h >> 33) + 1) as f64;
            j = ((b + 1) as f64 * ((1u64 << 31) as f64 / r)) as i64;
        }
        u32::try_from(b.max(0)).unwrap_or(0)
    }

    /// Whether this shard owns `symbol`.
    pub fn owns(&self, symbol: &str) -> bool {
        self.count <= 1 || Shard::of(symbol, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl CommonConfig {
    /// The defaults of a service (each has its own HTTP port).
    pub fn defaults(service: &str) -> Self {
        let port = match service {
            "trading-bot" => 8081,
            "execution" => 8082,
            "exit-brain" => 8083,
            "portfolio-intelligence" => 8084,
            "clm" => 8085,
            _ => 8080,
        };
        Self {
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_sentinels: String::new(),
            redis_master_name: "qt".into(),
            redis_cluster: String::new(),
            stream_prefix: "qt:".into(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log_format: None,
            log_level: "info".into(),
            instance: "0".into(),
            shard: "0/1".into(),
        }
    }

    /// This instance's shard (`QT_SHARD`, validated at load).
    pub fn shard(&self) -> Shard {
        Shard::parse(&self.shard).unwrap_or(Shard::ALL)
    }

    /// The seed nodes of `QT_REDIS_CLUSTER` (empty: not a cluster).
    pub fn cluster_nodes(&self) -> Vec<String> {
        nodes(&self.redis_cluster)
    }

    pub fn log_format(&self) -> LogFormat {
        use std::io::IsTerminal;
        self.log_format
            .unwrap_or(if std::io::stderr().is_terminal() {
                LogFormat::Pretty
            } else {
                LogFormat::Json
            })
    }

    /// The Sentinel nodes of `QT_REDIS_SENTINELS` (empty: none).
    pub fn sentinels(&self) -> Vec<String> {
        nodes(&self.redis_sentinels)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, list) in [
            ("redis_sentinels", self.sentinels()),
            ("redis_cluster", self.cluster_nodes()),
        ] {
            for node in list {
                let ok = node
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
                if !ok {
                    return Err(ConfigError::invalid(
                        key,
                        format!("expected host:port nodes separated by commas, got {node:?}"),
                    ));
                }
            }
        }
        if !self.cluster_nodes().is_empty() {
            if !self.sentinels().is_empty() {
                return Err(ConfigError::invalid(
                    "redis_cluster",
                    "set together with QT_REDIS_SENTINELS: choose one (a cluster fails over by \
                     itself)"
                        .into(),
                ));
            }
            if qt_events::StreamNames::new(self.stream_prefix.clone())
                .hash_tag()
                .is_none()
            {
                return Err(ConfigError::invalid(
                    "stream_prefix",
                    format!(
                        "{:?} has no hash tag, but QT_REDIS_CLUSTER is set: every key of a \
                         deployment must live in one cluster slot (a handler's outputs and its \
                         acknowledgement go in one MULTI); use e.g. \"qt:{{main}}:\"",
                        self.stream_prefix
                    ),
                ));
            }
        }
        if Shard::parse(&self.shard).is_none() {
            return Err(ConfigError::invalid(
                "shard",
                format!("expected i/N with 0 <= i < N <= 1024, got {:?}", self.shard),
            ));
        }
        if !self.sentinels().is_empty() && self.redis_master_name.trim().is_empty() {
            return Err(ConfigError::invalid(
                "redis_master_name",
                "must name the master the sentinels monitor".into(),
            ));
        }
        let schemes = ["redis://", "rediss://", "unix://", "redis+unix://"];
        if !schemes.iter().any(|s| self.redis_url.starts_with(s)) {
            return Err(ConfigError::invalid(
                "redis_url",
                format!(
                    "expected a redis://, rediss:// or unix:// URL, got {:?}",
                    redact_url(&self.redis_url)
                ),
            ));
        }
        if self.stream_prefix.is_empty() || self.stream_prefix.chars().any(char::is_whitespace) {
            return Err(ConfigError::invalid(
                "stream_prefix",
                format!(
                    "must be non-empty without spaces, got {:?}",
                    self.stream_prefix
                ),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log_level) {
            return Err(ConfigError::invalid("log_level", format!("{e}")));
        }
        if self.instance.is_empty()
            || !self
                .instance
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConfigError::invalid(
                "instance",
                format!("must be letters, digits, - or _, got {:?}", self.instance),
            ));
        }
        Ok(())
    }
}

/// The services that run as several instances, each on a shard of the symbols (`QT_SHARD`).
pub const SHARDED_SERVICES: &[&str] = &["trading-bot"];

/// `host:port` items of a comma-separated list.
fn nodes(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A bad setting. The message names it as a person would set it.
#[derive(Debug, thiserror::Error)]
#[error("bad setting {setting}: {detail}")]
pub struct ConfigError {
    /// As an environment variable, e.g. `QT_LOG_FORMAT` (and the file key).
    pub setting: String,
    pub detail: String,
}

impl ConfigError {
    fn invalid(key: &str, detail: String) -> Self {
        Self {
            setting: env_name(&[key]),
            detail,
        }
    }
}

fn env_name(path: &[&str]) -> String {
    format!(
        "QT_{} (file key {})",
        path.join("__").to_uppercase().replace('-', "_"),
        path.join(".")
    )
}

/// Hides a password in a URL before it is shown.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// A service's whole configuration.
#[derive(Debug, Clone)]
pub struct Config<S> {
    pub common: CommonConfig,
    /// The service's own settings: the `[<service>]` table, `QT_<SERVICE>__*` variables.
    pub service: S,
    /// The file it was read from, if any.
    pub file: Option<PathBuf>,
}

/// The config section name of a service (`exit-brain` → `exit_brain`).
pub fn section(service: &str) -> String {
    service.replace('-', "_")
}

impl<S: DeserializeOwned + Serialize + Default> Config<S> {
    /// Reads the layers from the process environment.
    pub fn load(service: &str) -> Result<Self, ConfigError> {
        Self::load_from(service, std::env::vars())
    }

    /// Reads the layers from the given environment (tests pass their own).
    pub fn load_from(
        service: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("QT_"))
            .collect();
        let file = env
            .iter()
            .find(|(k, _)| k == "QT_CONFIG")
            .map(|(_, v)| PathBuf::from(v));
        let sec = section(service);
        let mut fig = Figment::new()
            .merge(Serialized::defaults(CommonConfig::defaults(service)))
            .merge(Serialized::default(&sec, S::default()));
        if let Some(f) = &file {
            if !f.is_file() {
                return Err(ConfigError {
                    setting: "QT_CONFIG".into(),
                    detail: format!("no such file {}", f.display()),
                });
            }
            fig = fig.merge(Toml::file_exact(f));
        }
        // The environment last; `__` separates nested keys. Secrets (`QT_API_SECRET`, …) are
        // read by the crates that need them, never into these structs.
        let fig = with_env(fig, &env);
        let common: CommonConfig = fig.extract().map_err(|e| from_figment(e, None))?;
        common.validate()?;
        if common.shard().count > 1 && !SHARDED_SERVICES.contains(&service) {
            return Err(ConfigError::invalid(
                "shard",
                format!(
                    "{service} does not shard (only {}: the others are single writers or \
                     read every symbol), got {:?}",
                    SHARDED_SERVICES.join(", "),
                    common.shard
                ),
            ));
        }
        let service_cfg: S = fig
            .focus(&sec)
            .extract()
            .map_err(|e| from_figment(e, Some(&sec)))?;
        Ok(Self {
            common,
            service: service_cfg,
            file,
        })
    }
}

/// Reads a TOML file into `T` (absent keys from `T::default()` where `T` says `#[serde(default)]`):
/// the loader binaries with a file of their own use (sim-exchange's `--config`). A bad value is a
/// [`ConfigError`] naming the file and the key.
pub fn load_toml_file<T: DeserializeOwned>(path: &std::path::Path) -> Result<T, ConfigError> {
    if !path.is_file() {
        return Err(ConfigError {
            setting: format!("config file {}", path.display()),
            detail: "no such file".into(),
        });
    }
    Figment::new()
        .merge(Toml::file_exact(path))
        .extract()
        .map_err(|e| ConfigError {
            setting: if e.path.is_empty() {
                format!("config file {}", path.display())
            } else {
                format!("{} in {}", e.path.join("."), path.display())
            },
            detail: e.kind.to_string(),
        })
}

/// Merges `QT_*` variables (`QT_A__B` → key `a.b`). Figment's own `Env` provider reads the
/// process environment; taking the variables as an argument lets tests give their own.
fn with_env(fig: Figment, env: &[(String, String)]) -> Figment {
    let mut dict = figment::value::Dict::new();
    for (k, v) in env {
        let Some(rest) = k.strip_prefix("QT_") else {
            continue;
        };
        if rest == "CONFIG" {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
        insert(&mut dict, &path, figment::value::Value::from(v.clone()));
    }
    fig.merge(Serialized::defaults(dict).profile(figment::Profile::Default))
}

fn insert(dict: &mut figment::value::Dict, path: &[String], v: figment::value::Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), parse_env_value(v));
        }
        [head, rest @ ..] => {
            let entry = dict
                .entry(head.clone())
                .or_insert_with(|| figment::value::Dict::new().into());
            if let figment::value::Value::Dict(_, d) = entry {
                insert(d, rest, v);
            }
        }
    }
}

/// Environment values are strings; let figment see `8`, `true` or `1.5` as typed values the way
/// its own `Env` provider does. Only ASCII values are parsed: figment 0.10's parser panics on a
/// backslash before a multi-byte character (found by fuzzing, `config_fuzz` in execution), and
/// no typed setting needs anything but ASCII; other values stay strings.
fn parse_env_value(v: figment::value::Value) -> figment::value::Value {
    match v.as_str() {
        Some(s) if s.is_ascii() => s.parse::<figment::value::Value>().unwrap_or(v),
        _ => v,
    }
}

fn from_figment(e: figment::Error, section: Option<&str>) -> ConfigError {
    let path: Vec<&str> = section
        .into_iter()
        .chain(e.path.iter().map(String::as_str))
        .collect();
    let setting = if path.is_empty() {
        "configuration".to_owned()
    } else {
        env_name(&path)
    };
    ConfigError {
        setting,
        detail: e.kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Own {
        max_positions: u32,
        name: String,
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_bad_value_in_a_toml_file_is_named_with_its_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("own.toml");
        std::fs::write(&file, "max_positions = \"many\"\n").unwrap();
        let e = load_toml_file::<Own>(&file).unwrap_err();
        assert!(e.setting.starts_with("max_positions in "), "{e}");
        std::fs::write(&file, "max_positions = 3\n").unwrap();
        let own: Own = load_toml_file(&file).unwrap();
        assert_eq!(own.max_positions, 3);
        let missing = load_toml_file::<Own>(&dir.path().join("none.toml")).unwrap_err();
        assert!(missing.to_string().contains("no such file"), "{missing}");
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("qt.toml");
        std::fs::write(&file, "stream_prefix = \"file:\"\nlog_level = \"debug\"\n[exit_brain]\nmax_positions = 3\nname = \"f\"\n").unwrap();
        let cfg = Config::<Own>::load_from(
            "exit-brain",
            env(&[
                ("QT_CONFIG", file.to_str().unwrap()),
                ("QT_LOG_LEVEL", "warn"),
                ("QT_EXIT_BRAIN__MAX_POSITIONS", "8"),
                ("HOME", "/x"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.common.stream_prefix, "file:");
        assert_eq!(cfg.common.log_level, "warn");
        assert_eq!(cfg.common.http_addr.port(), 8083);
        assert_eq!(
            cfg.service,
            Own {
                max_positions: 8,
                name: "f".into()
            }
        );
    }

    #[test]
    fn a_value_with_a_backslash_before_a_multibyte_character_is_a_string_not_a_panic() {
        // Found by fuzzing (the minimal case): a quoted value with a backslash after a
        // multi-byte character; figment's value parser panicked on it.
        let cfg = Config::<Own>::load_from(
            "exit-brain",
            env(&[("QT_EXIT_BRAIN__NAME", "\"\u{1b00}\\®\"")]),
        )
        .unwrap();
        assert_eq!(cfg.service.name, "\"\u{1b00}\\®\"");
        let e = Config::<Own>::load_from(
            "exit-brain",
            env(&[("QT_EXIT_BRAIN__MAX_POSITIONS", "\"\u{1b00}\\®\"")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("MAX_POSITIONS"), "{e}");
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        let e =
            Config::<Own>::load_from("execution", env(&[("QT_LOG_FORMAT", "xml")])).unwrap_err();
        assert!(e.to_string().contains("QT_LOG_FORMAT"), "{e}");
        let e =
            Config::<Own>::load_from("execution", env(&[("QT_HTTP_ADDR", "nowhere")])).unwrap_err();
        assert!(e.to_string().contains("QT_HTTP_ADDR"), "{e}");
        let e =
            Config::<Own>::load_from("execution", env(&[("QT_REDIS_URL", "http://u:hunter2@x")]))
                .unwrap_err();
        assert!(
            e.to_string().contains("QT_REDIS_URL") && !e.to_string().contains("hunter2"),
            "{e}"
        );
        let e =
            Config::<Own>::load_from("execution", env(&[("QT_EXECUTION__MAX_POSITIONS", "many")]))
                .unwrap_err();
        assert!(e.to_string().contains("QT_EXECUTION__MAX_POSITIONS"), "{e}");
        let e = Config::<Own>::load_from("execution", env(&[("QT_CONFIG", "/no/such.toml")]))
            .unwrap_err();
        assert!(e.to_string().contains("QT_CONFIG"), "{e}");
    }

    #[test]
    fn sentinel_nodes_are_host_port_pairs_and_need_a_master_name() {
        let c = Config::<Own>::load_from(
            "execution",
            env(&[("QT_REDIS_SENTINELS", "10.0.0.1:26379, sentinel-b:26379,")]),
        )
        .unwrap();
        assert_eq!(
            c.common.sentinels(),
            vec!["10.0.0.1:26379".to_owned(), "sentinel-b:26379".to_owned()]
        );
        assert_eq!(c.common.redis_master_name, "qt");
        for bad in ["10.0.0.1", "host:port", ":26379"] {
            let e = Config::<Own>::load_from("execution", env(&[("QT_REDIS_SENTINELS", bad)]))
                .unwrap_err();
            assert!(e.to_string().contains("QT_REDIS_SENTINELS"), "{bad}: {e}");
        }
        let e = Config::<Own>::load_from(
            "execution",
            env(&[("QT_REDIS_SENTINELS", "a:1"), ("QT_REDIS_MASTER_NAME", " ")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("QT_REDIS_MASTER_NAME"), "{e}");
    }

    #[test]
    fn a_cluster_needs_host_port_seeds_a_tagged_prefix_and_no_sentinels() {
        let c = Config::<Own>::load_from(
            "execution",
            env(&[
                ("QT_REDIS_CLUSTER", "10.0.0.1:7000, r2:7001"),
                ("QT_STREAM_PREFIX", "qt:{main}:"),
            ]),
        )
        .unwrap();
        assert_eq!(c.common.cluster_nodes(), vec!["10.0.0.1:7000", "r2:7001"]);
        let e = Config::<Own>::load_from("execution", env(&[("QT_REDIS_CLUSTER", "r1:7000")]))
            .unwrap_err();
        assert!(e.to_string().contains("QT_STREAM_PREFIX"), "{e}");
        let e = Config::<Own>::load_from(
            "execution",
            env(&[("QT_REDIS_CLUSTER", "r1"), ("QT_STREAM_PREFIX", "{qt}:")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("QT_REDIS_CLUSTER"), "{e}");
        let e = Config::<Own>::load_from(
            "execution",
            env(&[
                ("QT_REDIS_CLUSTER", "r1:7000"),
                ("QT_STREAM_PREFIX", "{qt}:"),
                ("QT_REDIS_SENTINELS", "s:26379"),
            ]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("QT_REDIS_CLUSTER"), "{e}");
    }

    #[test]
    fn a_shard_is_i_of_n() {
        let c = Config::<Own>::load_from("trading-bot", env(&[])).unwrap();
        assert_eq!(c.common.shard(), Shard::ALL);
        let c = Config::<Own>::load_from("trading-bot", env(&[("QT_SHARD", "2/3")])).unwrap();
        assert_eq!(c.common.shard(), Shard { index: 2, count: 3 });
        let e = Config::<Own>::load_from("execution", env(&[("QT_SHARD", "0/2")])).unwrap_err();
        assert!(e.to_string().contains("QT_SHARD"), "{e}");
        for bad in ["3/3", "1", "0/0", "a/2", "-1/2", "0/2000"] {
            let e = Config::<Own>::load_from("trading-bot", env(&[("QT_SHARD", bad)])).unwrap_err();
            assert!(e.to_string().contains("QT_SHARD"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_symbol_has_one_shard_and_a_new_shard_takes_symbols_only_for_itself() {
        let symbols: Vec<String> = (0..300).map(|i| format!("SYM{i}USDT")).collect();
        for n in 1..=8u32 {
            let mut per = vec![0usize; n as usize];
            for s in &symbols {
                let owners: Vec<u32> = (0..n)
                    .filter(|i| {
                        Shard {
                            index: *i,
                            count: n,
                        }
                        .owns(s)
                    })
                    .collect();
                assert_eq!(owners.len(), 1, "{s} over {n}: {owners:?}");
                per[owners[0] as usize] += 1;
                // From n to n+1 a symbol stays where it was or moves to the new shard.
                let next = Shard::of(s, n + 1);
                assert!(
                    next == owners[0] || next == n,
                    "{s}: {} -> {next}",
                    owners[0]
                );
            }
            // Balanced within a wide margin (300 symbols).
            let fair = 300 / n as usize;
            assert!(
                per.iter().all(|c| *c * 2 >= fair && *c <= fair * 2),
                "{n}: {per:?}"
            );
        }
        // Fixed by the algorithm, not by the build or the platform: these owners never change
        // (a change would move symbols between running shards).
        let owners = |n| {
            [
                "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "BNBUSDT",
            ]
            .map(|s| Shard::of(s, n))
        };
        assert_eq!(owners(1), [0; 6]);
        assert_eq!(owners(2), [0, 1, 0, 0, 1, 0]);
        assert_eq!(owners(3), [0, 1, 2, 0, 1, 0]);
        assert_eq!(owners(4), [0, 3, 2, 0, 1, 0]);
    }
}

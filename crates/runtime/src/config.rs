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
            stream_prefix: "qt:".into(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log_format: None,
            log_level: "info".into(),
            instance: "0".into(),
        }
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
        self.redis_sentinels
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for node in self.sentinels() {
            let ok = node
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return Err(ConfigError::invalid(
                    "redis_sentinels",
                    format!("expected host:port nodes separated by commas, got {node:?}"),
                ));
            }
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
}

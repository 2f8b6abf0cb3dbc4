//! The account's modes that change what an order means: the position mode (one-way, where a
//! symbol has one net position, or hedge, where LONG and SHORT legs are kept apart and every
//! order names its `positionSide`) and the margin asset mode (single-asset or multi-assets).
//! They are set on the account, not per order, so a service that trades reads them at start
//! and refuses to run when they are not the ones its configuration says
//! ([`check_account_modes`]): orders built for one-way mode are refused by a hedge-mode account
//! (`-4061`), and margin in multi-assets mode spans every asset of the wallet.

use serde::Deserialize;

use crate::config::ConfigError;
use crate::error::ExchangeError;
use crate::exchange::Exchange;

/// The position mode of a Binance USDⓈ-M account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PositionMode {
    /// One net position per symbol (`dualSidePosition=false`), Binance's default.
    #[default]
    OneWay,
    /// LONG and SHORT positions apart (`dualSidePosition=true`).
    Hedge,
}

impl PositionMode {
    /// The mode of a `dualSidePosition` answer.
    pub fn from_dual_side(dual: bool) -> Self {
        if dual {
            PositionMode::Hedge
        } else {
            PositionMode::OneWay
        }
    }

    /// The value of `QT_POSITION_MODE` that names this mode.
    pub fn name(self) -> &'static str {
        match self {
            PositionMode::OneWay => "one-way",
            PositionMode::Hedge => "hedge",
        }
    }

    /// `dualSidePosition` of this mode.
    pub fn dual_side(self) -> bool {
        self == PositionMode::Hedge
    }
}

/// What the configuration says the account's modes are (`QT_POSITION_MODE`,
/// `QT_MULTI_ASSETS_MARGIN`); default one-way and single-asset, Binance's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct AccountModes {
    pub position_mode: PositionMode,
    /// Multi-assets margin mode (`multiAssetsMargin=true`) rather than single-asset.
    pub multi_assets_margin: bool,
}

impl AccountModes {
    /// Reads `QT_POSITION_MODE` (`one-way`|`hedge`, default one-way) and
    /// `QT_MULTI_ASSETS_MARGIN` (`true`|`false`, default false) through `get`.
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let nonempty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let position_mode = match nonempty("QT_POSITION_MODE") {
            None => PositionMode::OneWay,
            Some(v) => match v.trim() {
                "one-way" => PositionMode::OneWay,
                "hedge" => PositionMode::Hedge,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "QT_POSITION_MODE",
                        expected: "one-way|hedge",
                        got: v,
                    });
                }
            },
        };
        let multi_assets_margin = match nonempty("QT_MULTI_ASSETS_MARGIN") {
            None => false,
            Some(v) => match v.trim() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "QT_MULTI_ASSETS_MARGIN",
                        expected: "true|false",
                        got: v,
                    });
                }
            },
        };
        Ok(Self {
            position_mode,
            multi_assets_margin,
        })
    }

    /// `one-way, single-asset` or the like, for messages.
    pub fn describe(self) -> String {
        format!(
            "{} position mode, {} margin",
            self.position_mode.name(),
            if self.multi_assets_margin {
                "multi-assets"
            } else {
                "single-asset"
            }
        )
    }
}

/// Why [`check_account_modes`] refused.
#[derive(Debug, thiserror::Error)]
pub enum ModesError {
    /// The account's modes differ from the configuration's; the message names both values of
    /// every mode that differs and how to put them in agreement.
    #[error("{0}")]
    Mismatch(String),
    /// The modes could not be read.
    #[error("cannot read the account's modes: {0}")]
    Exchange(#[from] ExchangeError),
}

/// Reads the account's position mode and multi-assets mode and compares them with `want`;
/// returns what the account has when they agree.
///
/// # Errors
/// [`ModesError::Mismatch`] naming the account's value and the configured one of each mode
/// that differs; [`ModesError::Exchange`] when they cannot be read (keys, network).
pub async fn check_account_modes<E: Exchange>(
    exchange: &E,
    want: AccountModes,
) -> Result<AccountModes, ModesError> {
    let have = AccountModes {
        position_mode: PositionMode::from_dual_side(exchange.dual_side_position().await?),
        multi_assets_margin: exchange.multi_assets_margin().await?,
    };
    let mut wrong = Vec::new();
    if have.position_mode != want.position_mode {
        wrong.push(format!(
            "the account is in {} position mode (dualSidePosition={}) but QT_POSITION_MODE={}; \
             set QT_POSITION_MODE={} or change the account's mode (POST \
             /fapi/v1/positionSide/dual dualSidePosition={}, with no position or open order)",
            have.position_mode.name(),
            have.position_mode.dual_side(),
            want.position_mode.name(),
            have.position_mode.name(),
            want.position_mode.dual_side(),
        ));
    }
    if have.multi_assets_margin != want.multi_assets_margin {
        wrong.push(format!(
            "the account has multiAssetsMargin={} but QT_MULTI_ASSETS_MARGIN={}; set \
             QT_MULTI_ASSETS_MARGIN={} or change the account's mode (POST \
             /fapi/v1/multiAssetsMargin multiAssetsMargin={})",
            have.multi_assets_margin,
            want.multi_assets_margin,
            have.multi_assets_margin,
            want.multi_assets_margin,
        ));
    }
    if wrong.is_empty() {
        Ok(have)
    } else {
        Err(ModesError::Mismatch(wrong.join("; ")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_string())
        }
    }

    #[test]
    fn account_modes_default_to_one_way_single_asset_and_refuse_unknown_values() {
        let d = AccountModes::from_env_with(env(&[])).unwrap();
        assert_eq!(d, AccountModes::default());
        assert_eq!(d.position_mode, PositionMode::OneWay);
        assert!(!d.multi_assets_margin);
        let h = AccountModes::from_env_with(env(&[
            ("QT_POSITION_MODE", "hedge"),
            ("QT_MULTI_ASSETS_MARGIN", "true"),
        ]))
        .unwrap();
        assert_eq!(h.position_mode, PositionMode::Hedge);
        assert!(h.multi_assets_margin);
        let e = AccountModes::from_env_with(env(&[("QT_POSITION_MODE", "dual")])).unwrap_err();
        assert!(e.to_string().starts_with("QT_POSITION_MODE"), "{e}");
        let e = AccountModes::from_env_with(env(&[("QT_MULTI_ASSETS_MARGIN", "yes")])).unwrap_err();
        assert!(e.to_string().starts_with("QT_MULTI_ASSETS_MARGIN"), "{e}");
    }
}

//! The guard's exchange filters by symbol: a short list sorted by symbol, searched by
//! [`SymbolKey`] (one integer compared per step instead of a name), by text for names longer
//! than a key stands for.

use crate::book::SymbolKey;
use crate::filters::SymbolFilters;

#[derive(Debug, Clone)]
pub(crate) struct FilterTable {
    /// Sorted by symbol (keys of names they stand for order as the names).
    items: Vec<(SymbolKey, String, SymbolFilters)>,
    /// Every name listed is one its key stands for (see [`SymbolKey::exact`]).
    keyed: bool,
}

impl Default for FilterTable {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            keyed: true,
        }
    }
}

impl FilterTable {
    fn find(&self, symbol: &str) -> Result<usize, usize> {
        if self.keyed && SymbolKey::exact(symbol) {
            let key = SymbolKey::of(symbol);
            self.items.binary_search_by(|(k, _, _)| k.cmp(&key))
        } else {
            self.items
                .binary_search_by(|(_, name, _)| name.as_str().cmp(symbol))
        }
    }

    #[inline]
    pub(crate) fn get(&self, symbol: &str) -> Option<&SymbolFilters> {
        self.find(symbol).ok().map(|i| &self.items[i].2)
    }

    /// Sets (or replaces) a symbol's filters.
    pub(crate) fn set(&mut self, symbol: &str, filters: SymbolFilters) {
        match self.find(symbol) {
            Ok(i) => self.items[i].2 = filters,
            Err(i) => {
                self.keyed &= SymbolKey::exact(symbol);
                let entry = (SymbolKey::of(symbol), symbol.to_owned(), filters);
                self.items.insert(i, entry);
            }
        }
    }

    /// Every symbol's filters, in symbol order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &SymbolFilters)> {
        self.items.iter().map(|(_, name, f)| (name.as_str(), f))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::*;

    fn filters(n: u32) -> SymbolFilters {
        SymbolFilters {
            step_size: Decimal::new(1, n % 8),
            ..SymbolFilters::NONE
        }
    }

    proptest! {
        /// Whatever names are set, in whatever order (short, long, prefixes of each other,
        /// set twice), the table finds exactly what a map by name holds, and lists it in the
        /// map's order.
        #[test]
        fn the_table_finds_what_a_map_by_name_holds(
            sets in proptest::collection::vec(("[A-C]{0,3}(USDT|X{12,14})?", 0u32..100), 0..24),
            asks in proptest::collection::vec("[A-C]{0,3}(USDT|X{12,14})?", 0..24),
        ) {
            let mut table = FilterTable::default();
            let mut map = BTreeMap::new();
            for (name, n) in &sets {
                table.set(name, filters(*n));
                map.insert(name.clone(), filters(*n));
            }
            for name in asks.iter().chain(sets.iter().map(|(n, _)| n)) {
                prop_assert_eq!(table.get(name), map.get(name), "{}", name);
            }
            let listed: Vec<(&str, &SymbolFilters)> = table.iter().collect();
            let expected: Vec<(&str, &SymbolFilters)> =
                map.iter().map(|(k, v)| (k.as_str(), v)).collect();
            prop_assert_eq!(listed, expected);
        }
    }
}

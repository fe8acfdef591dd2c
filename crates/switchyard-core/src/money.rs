//! Money as integer pico-dollars.
//!
//! Every amount inside the gateway is a [`Money`]: a signed count of 10⁻¹² USD. Catalogue prices
//! are per token, and real list prices (`$0.01875` per million tokens, say) are exact at this
//! resolution, so the cost of a generation is an exact integer product. An `i64` of pico-dollars
//! holds ±9.2 million USD; arithmetic is checked and reports overflow instead of wrapping.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Pico-dollars in one US dollar.
pub const PICOS_PER_USD: i64 = 1_000_000_000_000;

/// Decimal places of USD that [`Money`] represents exactly.
pub const SCALE: u32 = 12;

/// An exact amount of US dollars, in pico-dollars.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

/// Why a decimal could not become [`Money`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The amount has more decimal places than a pico-dollar.
    #[error("has more than 12 decimal places of USD")]
    TooPrecise,
    /// The amount does not fit.
    #[error("is out of range")]
    OutOfRange,
    /// The text is not a decimal number.
    #[error("is not a decimal number")]
    NotANumber,
}

impl Money {
    /// Zero dollars.
    pub const ZERO: Money = Money(0);

    /// Builds an amount from pico-dollars.
    pub const fn from_picos(picos: i64) -> Self {
        Money(picos)
    }

    /// The amount in pico-dollars.
    pub const fn picos(self) -> i64 {
        self.0
    }

    /// Converts an exact decimal USD amount; refuses anything finer than a pico-dollar.
    pub fn from_usd(usd: Decimal) -> Result<Self, MoneyError> {
        let scaled = usd
            .checked_mul(Decimal::from(PICOS_PER_USD))
            .ok_or(MoneyError::OutOfRange)?;
        if scaled.fract() != Decimal::ZERO {
            return Err(MoneyError::TooPrecise);
        }
        i64::try_from(scaled)
            .map(Money)
            .map_err(|_| MoneyError::OutOfRange)
    }

    /// Parses a decimal string of USD such as `"0.0000025"` (also accepts exponent notation).
    pub fn parse_usd(text: &str) -> Result<Self, MoneyError> {
        let text = text.trim();
        let decimal = text
            .parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(text))
            .map_err(|_| MoneyError::NotANumber)?;
        Self::from_usd(decimal)
    }

    /// Converts a USD amount given as a JSON number (which arrives as `f64`) by reading its
    /// shortest decimal representation, so that `0.5` is exactly fifty cents.
    pub fn from_json_number(number: &serde_json::Number) -> Result<Self, MoneyError> {
        Self::parse_usd(&number.to_string())
    }

    /// The amount as an exact decimal of USD.
    pub fn to_usd(self) -> Decimal {
        Decimal::from_i128_with_scale(i128::from(self.0), SCALE).normalize()
    }

    /// The amount as a JSON number of USD, for the wire format only. Never used for arithmetic.
    pub fn to_json_number(self) -> serde_json::Value {
        // The decimal string is exact; serde_json reads it into the nearest f64 for output.
        let text = self.to_usd().to_string();
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or(serde_json::Value::Null)
    }

    /// Checked addition.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// Checked subtraction.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// Checked multiplication by a count (of tokens, requests...).
    pub fn checked_mul(self, count: u64) -> Option<Money> {
        i64::try_from(count)
            .ok()
            .and_then(|n| self.0.checked_mul(n))
            .map(Money)
    }

    /// Saturating addition, for sums that only feed reports.
    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    /// Whether the amount is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.to_usd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_list_prices_exactly() {
        let cases = [
            ("0", 0),
            ("1", PICOS_PER_USD),
            ("0.0000025", 2_500_000),
            ("0.00000001875", 18_750),
            ("2.5e-6", 2_500_000),
            ("0.000000000001", 1),
        ];
        for (text, picos) in cases {
            assert_eq!(
                Money::parse_usd(text),
                Ok(Money::from_picos(picos)),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        assert_eq!(
            Money::parse_usd("0.0000000000001"),
            Err(MoneyError::TooPrecise)
        );
        assert_eq!(Money::parse_usd("abc"), Err(MoneyError::NotANumber));
        assert_eq!(Money::parse_usd("100000000"), Err(MoneyError::OutOfRange));
    }

    #[test]
    fn renders_exact_decimal() {
        assert_eq!(
            Money::from_picos(2_500_000).to_usd().to_string(),
            "0.0000025"
        );
        assert_eq!(
            Money::from_picos(140_000_000).to_json_number(),
            serde_json::json!(0.00014)
        );
        assert_eq!(Money::ZERO.to_json_number(), serde_json::json!(0));
    }

    proptest! {
        #[test]
        fn decimal_round_trip(picos in -PICOS_PER_USD * 1000..PICOS_PER_USD * 1000) {
            let money = Money::from_picos(picos);
            prop_assert_eq!(Money::from_usd(money.to_usd()), Ok(money));
            prop_assert_eq!(Money::parse_usd(&money.to_usd().to_string()), Ok(money));
        }
    }
}

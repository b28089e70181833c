//! Decoders for the `value` shapes of the bank model that borrow from the line and
//! never build a `serde_json::Value`.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// A transfer id: a string or an integer, unique within a run. `5` and `"5"` differ.
///
/// Short strings are kept inline (no allocation, one cache line for the map lookup);
/// build string ids with [`TransferId::from_text`] so that each string has one form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransferId {
    /// An integer id that fits `i64`.
    Int(i64),
    /// An integer id above `i64::MAX`.
    UInt(u64),
    /// A string id of at most [`TransferId::INLINE`] bytes.
    Short(u8, [u8; TransferId::INLINE]),
    /// A longer string id.
    Str(Box<str>),
}

impl TransferId {
    /// Longest string id kept inline.
    pub const INLINE: usize = 22;

    /// The id of a string.
    pub fn from_text(s: &str) -> TransferId {
        if s.len() <= Self::INLINE {
            let mut b = [0u8; Self::INLINE];
            b[..s.len()].copy_from_slice(s.as_bytes());
            TransferId::Short(s.len() as u8, b)
        } else {
            TransferId::Str(s.into())
        }
    }

    /// The string of a string id.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            TransferId::Short(n, b) => std::str::from_utf8(b.get(..usize::from(*n))?).ok(),
            TransferId::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The id as JSON, for findings.
    pub fn to_value(&self) -> Value {
        match self {
            TransferId::Int(n) => Value::from(*n),
            TransferId::UInt(n) => Value::from(*n),
            s => Value::from(s.as_str().unwrap_or_default()),
        }
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferId::Int(n) => write!(f, "transfer {n}"),
            TransferId::UInt(n) => write!(f, "transfer {n}"),
            s => f.write_str(s.as_str().unwrap_or_default()),
        }
    }
}

impl<'de> Deserialize<'de> for TransferId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TransferId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a transfer id (string or integer)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TransferId, E> {
                Ok(TransferId::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TransferId, E> {
                Ok(i64::try_from(v).map_or(TransferId::UInt(v), TransferId::Int))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TransferId, E> {
                Ok(TransferId::from_text(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// An account name: a string, or an integer (Jepsen's bank uses `0`, `1`, …) read as
/// its decimal spelling so that it matches the keys of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Account<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Account<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an account (string or integer)")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Account<'a>, E> {
                Ok(Account(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Account<'a>, E> {
                Ok(Account(Cow::Owned(v.to_owned())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Account<'a>, E> {
                Ok(Account(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Account<'a>, E> {
                Ok(Account(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `transfer` value: `{"id", "from", "to", "amount"}`; `id` is absent in Jepsen-style
/// histories.
#[derive(Debug, Deserialize)]
pub struct TransferValue<'a> {
    /// The transfer id.
    #[serde(default)]
    pub id: Option<TransferId>,
    /// Debited account.
    #[serde(borrow)]
    pub from: Account<'a>,
    /// Credited account.
    #[serde(borrow)]
    pub to: Account<'a>,
    /// Amount moved.
    pub amount: i64,
}

/// Only the `id` of a `transfer` value (other fields ignored): what can still be
/// read of a value whose other fields cannot.
#[derive(Debug, Deserialize)]
pub struct TransferIdOnly {
    /// The transfer id.
    #[serde(default)]
    pub id: Option<TransferId>,
}

/// One entry of a `final-ledger` line.
#[derive(Debug, Deserialize)]
pub struct EntryValue<'a> {
    /// The transfer it belongs to.
    pub transfer: TransferId,
    /// The account it changes.
    #[serde(borrow)]
    pub account: Account<'a>,
    /// Signed amount.
    pub amount: i64,
}

/// `final-ledger` value; `entries` and `balances` may each be absent.
#[derive(Debug, Deserialize)]
pub struct LedgerValue<'a> {
    /// The bank whose ledger this is.
    #[serde(default, borrow)]
    pub bank: Option<Account<'a>>,
    /// Ledger rows.
    #[serde(default, borrow)]
    pub entries: Vec<EntryValue<'a>>,
    /// Final balances (null balances are kept as `None`).
    #[serde(default, borrow)]
    pub balances: Option<Balances<'a>>,
    /// Completeness mark (an extension): `true` on the bank's last line, `false` on
    /// the others; `null` is the same as absent.
    #[serde(default)]
    pub complete: Option<bool>,
    /// Completeness mark (an extension): how many entries the bank's lines hold in
    /// all; `null` is the same as absent.
    #[serde(default)]
    pub entry_count: Option<u64>,
}

/// One `account: balance` pair of a balances map, in order.
#[derive(Debug)]
pub struct BalanceValue<'a> {
    /// The account.
    pub account: Cow<'a, str>,
    /// Its balance, `None` for `null`.
    pub balance: Option<i64>,
}

/// A JSON object `{account: balance|null}` as a list of pairs in order (a read's
/// value, `init`'s and `final-ledger`'s balances).
#[derive(Debug, Default)]
pub struct Balances<'a>(pub Vec<BalanceValue<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Balances<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Balances<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from account to integer balance")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Account<'a>>()? {
                    let balance = m.next_value::<Option<i64>>()?;
                    out.push(BalanceValue {
                        account: k.0,
                        balance,
                    });
                }
                Ok(Balances(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// `dead-letter` value.
#[derive(Debug, Deserialize)]
pub struct DeadLetterValue {
    /// The parked transfer.
    pub transfer: TransferId,
    /// Why it was parked.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `init` value.
#[derive(Debug, Deserialize)]
pub struct InitValue<'a> {
    /// Every account and its starting balance.
    #[serde(borrow)]
    pub balances: Balances<'a>,
}

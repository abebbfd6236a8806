//! Per-user credits and rate limits: model prices, what a request
//! reserves and what it is finally charged, the day zone, and the ledger state
//! machine that the per-user `UserLedger` Durable Object runs. The DO is a thin
//! shell: it loads a [`Ledger`], calls [`Ledger::apply`] with the current time,
//! persists the ledger when it changed, and answers.
//!
//! Exactness comes from serialization alone: the DO handles one request at a
//! time, so every rule here is plain sequential arithmetic. Nothing here reads
//! a clock, storage, D1 or a secret (only the key's SHA-256 is compared).

mod glob;
mod headers;
mod ledger;
mod prices;
mod zones;

#[cfg(test)]
mod tests;

pub use glob::glob_match;
pub use headers::{RateView, format_reset};
pub use ledger::{Denial, Lease, Ledger, LedgerRequest, LedgerResponse, UserLimits};
pub use prices::{
    ChargingMode, Estimate, ModelCost, Price, Reservation, Usage, charge, price_for, reservation,
};
pub use zones::{DayWindow, DayZone, MinuteWindow};

//! Gemini CLI (Code Assist) accounts: a second kind of upstream beside the
//! API keys. Reading the credentials operators have (`creds`), onboarding in
//! gemini-cli's order and the refusals that need the operator (`onboard`),
//! the OAuth wizard and token lifetimes (`oauth`), Code Assist's envelope
//! (`envelope`), and which kind serves which model (`routing`).

pub mod creds;
pub mod envelope;
pub mod oauth;
pub mod onboard;
pub mod record;
pub mod routing;

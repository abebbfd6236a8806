//! Handlers of the client surfaces. Each parses, calls the domain and the
//! layers below, and renders; none uses another (`make boundary`).

pub mod anthropic;
pub mod files;
pub mod gemini;
pub mod health;
pub mod images;
pub mod openai;
pub mod responses;
pub mod speech;
pub mod usage;

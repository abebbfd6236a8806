//! What the model gates report: each concurrency-limited model's queue for
//! the dashboard, and one gate's counters (tests read them to prove the
//! common path makes no gate call).

use worker::Response;

use crate::domain::error::GatewayError;
use crate::edge::app::App;

type HandlerResult = Result<Response, GatewayError>;

/// `GET /admin/api/models/queues`.
pub async fn queues(_app: &App) -> HandlerResult {
    Err(GatewayError::invalid("not yet"))
}

/// `GET /admin/api/models/{model}/gate`.
pub async fn gate(_app: &App, _model: &str) -> HandlerResult {
    Err(GatewayError::invalid("not yet"))
}

//! Serving: bind, build the router, run until the shutdown future
//! completes, then drain in-flight requests (axum's graceful shutdown).

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::{self, ApiKeys, ApiState, HttpOptions};
use crate::gateway::Gateway;

/// The router for `gw` with these keys and limits, with Prometheus if this
/// process's recorder is ours.
pub fn app(gw: Arc<Gateway>, keys: ApiKeys, http: &HttpOptions) -> axum::Router {
    let state = Arc::new(ApiState {
        gw,
        keys,
        prometheus: crate::telemetry::prometheus(),
    });
    api::router(state, http)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

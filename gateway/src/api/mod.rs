//! The HTTP edge: Qdrant-compatible routes, the spec's cluster routes,
//! Prometheus, and the tower layers around them (auth, body limit,
//! timeout, concurrency limit, per-route metrics).
//!
//! - [`models`]: Qdrant request shapes → `protocol` types, and answers.
//! - [`collections`]: collection admin and info.
//! - [`points`]: point writes and reads.
//! - [`payload_indexes`]: create / delete a payload index, `payload_schema`.
//! - [`cluster`]: `/api/cluster/{health,metrics,topology}`, `/cluster`,
//!   `GET /collections/{c}/cluster`.
//! - [`shards`]: Qdrant's cluster operations (`POST /collections/{c}/cluster`)
//!   and `PATCH /collections/{c}` (replication factor).
//! - [`nodes`]: operator routes: drain, remove, rebalance, settings,
//!   transfers.
//! - [`aliases`]: collection aliases, and the layer resolving them on
//!   every collection route.
//! - [`dashboard`]: `GET /dashboard`, the operators' HTML page over the
//!   routes above.
//! - [`unsupported`]: 501 answers naming the Qdrant features we lack.
//! - [`openapi`]: the OpenAPI document of these routes (`GET /openapi.json`),
//!   generated from the handlers' annotations.
//! - [`auth`]: API keys (read-write, read-only, scoped to collections).
//! - [`scope`]: what a collection-scoped key may reach.

pub mod aliases;
pub mod auth;
pub mod cluster;
pub mod collections;
pub mod dashboard;
pub mod models;
pub mod nodes;
pub mod openapi;
mod path;
pub mod payload_indexes;
pub mod points;
pub mod scope;
pub mod shards;
pub mod unsupported;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Query, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use serde_json::{json, Value};
use tower::ServiceBuilder;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{GatewayError, Result};
use crate::gateway::Gateway;
pub use auth::{ApiKeys, CollectionKey};
pub use scope::ScopeAccess;

/// HTTP-level limits (the tower layers).
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 512,
        }
    }
}

pub struct ApiState {
    pub gw: Arc<Gateway>,
    pub keys: ApiKeys,
    pub prometheus: Option<PrometheusHandle>,
}

pub type AppState = Arc<ApiState>;

/// Query-string parameters, all optional and parsed per route.
pub type Params = Query<BTreeMap<String, String>>;

/// The configured body limit, in every request's extensions, so the 413
/// can name it.
#[derive(Clone, Copy, Debug)]
struct BodyLimit(usize);

/// A JSON body read within the body limit; malformed JSON is a 400 with
/// serde's message, an oversized body a 413 naming the limit, an empty
/// body `{}`.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = GatewayError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().copied();
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                GatewayError::PayloadTooLarge {
                    message: match limit {
                        Some(BodyLimit(n)) => format!(
                            "request body exceeds the limit of {n} bytes (gateway.max_body_bytes)"
                        ),
                        None => rej.body_text(),
                    },
                }
            } else {
                GatewayError::bad_request(rej.body_text())
            }
        })?;
        json_body(&bytes).map(JsonBody)
    }
}

/// A request body as JSON: an empty (or all-whitespace) body is `{}`.
pub fn json_body(bytes: &[u8]) -> Result<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| GatewayError::bad_request(format!("Format error in JSON body: {e}")))
}

/// Qdrant's success envelope.
pub fn ok<T: Serialize>(result: T, started: Instant) -> Response {
    Json(json!({
        "result": result,
        "status": "ok",
        "time": started.elapsed().as_secs_f64(),
    }))
    .into_response()
}

/// Builds the whole router with its layers.
pub fn router(state: AppState, http: &HttpOptions) -> Router {
    let (api, mut doc) = routes().split_for_parts();
    openapi::finish(&mut doc, unsupported::ROUTES);
    let api = api.layer(axum::Extension(openapi::Served::new(&doc)));
    let api = unsupported::routes(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    let timeout = http.request_timeout;
    let api = api
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .layer(DefaultBodyLimit::max(http.max_body_bytes))
        .layer(axum::Extension(BodyLimit(http.max_body_bytes)))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |e: BoxError| async move {
                    if e.is::<tower::timeout::error::Elapsed>() {
                        GatewayError::Timeout {
                            secs: timeout.as_secs_f64(),
                        }
                    } else {
                        GatewayError::Internal {
                            message: e.to_string(),
                        }
                    }
                }))
                .timeout(timeout)
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                    http.max_concurrent_requests.max(1),
                )),
        )
        .layer(middleware::from_fn(record_metrics));
    // Aliases are resolved before routing (see `aliases::resolve`): the
    // routes above sit behind an outer router with only a fallback.
    Router::new()
        .fallback_service(api)
        .layer(middleware::from_fn_with_state(state, aliases::resolve))
}

/// Every documented route. Each `routes!` registers the handlers of one
/// path from their `#[utoipa::path]` annotations (method and path
/// included), which also put them in the OpenAPI document.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(cluster::root))
        .routes(routes!(cluster::healthz))
        .routes(routes!(cluster::livez))
        .routes(routes!(cluster::readyz))
        .routes(routes!(cluster::prometheus))
        .routes(routes!(dashboard::page))
        .routes(routes!(openapi::serve))
        .routes(routes!(cluster::health))
        .routes(routes!(cluster::metrics))
        .routes(routes!(cluster::topology))
        .routes(routes!(nodes::list))
        .routes(routes!(nodes::remove))
        .routes(routes!(nodes::drain))
        .routes(routes!(nodes::rebalance))
        .routes(routes!(nodes::get_settings, nodes::put_settings))
        .routes(routes!(nodes::transfers))
        .routes(routes!(cluster::qdrant_cluster))
        .routes(routes!(nodes::remove_peer))
        .routes(routes!(collections::list))
        .routes(routes!(
            collections::create,
            collections::info,
            shards::update_collection,
            collections::delete
        ))
        .routes(routes!(collections::exists))
        .routes(routes!(cluster::collection_cluster, shards::update_cluster))
        .routes(routes!(points::write::upsert, points::read::retrieve))
        .routes(routes!(points::read::get_point))
        .routes(routes!(points::write::delete))
        .routes(routes!(points::read::scroll))
        .routes(routes!(points::read::count))
        .routes(routes!(points::read::search))
        .routes(routes!(points::read::search_batch))
        .routes(routes!(points::query::query))
        .routes(routes!(points::query::query_batch))
        .routes(routes!(points::groups::query_groups))
        .routes(routes!(points::groups::search_groups))
        .routes(routes!(points::groups::facet))
        .routes(routes!(payload_indexes::create))
        .routes(routes!(payload_indexes::delete))
        .routes(routes!(aliases::list))
        .routes(routes!(aliases::change))
        .routes(routes!(aliases::of_collection))
        .routes(routes!(points::batch::batch))
        .routes(routes!(
            points::write::set_payload,
            points::write::overwrite_payload
        ))
        .routes(routes!(points::write::delete_payload))
        .routes(routes!(points::write::clear_payload))
        .routes(routes!(
            unsupported::shard_keys,
            unsupported::create_shard_key
        ))
}

/// The OpenAPI document of [`router`]'s routes, as `GET /openapi.json`
/// serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = routes().split_for_parts();
    openapi::finish(&mut doc, unsupported::ROUTES);
    doc
}

async fn not_found() -> GatewayError {
    GatewayError::NotFoundRoute
}

async fn method_not_allowed() -> GatewayError {
    GatewayError::MethodNotAllowed
}

/// Per-route request counts and latency histograms.
async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("gateway_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status).increment(1);
    metrics::histogram!("gateway_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// Shared by handlers that need the state and a start time.
pub(crate) fn started() -> Instant {
    Instant::now()
}

//! `GET /dashboard`: the cluster dashboard, one self-contained HTML page
//! (inline CSS and JavaScript, no external asset) compiled into the
//! binary. It carries no data: the page polls `/api/cluster/{health,
//! topology,metrics,transfers}`, `/collections/{c}` and `/metrics` every
//! 2 s, sending the API key the operator gave it (`?api_key=` or its form,
//! kept in sessionStorage) as the `api-key` header. That is why the page
//! itself is served without a key (see `auth::is_open`).
//! Checked in headless Chromium by `gateway/tests/dashboard/check.sh`.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("dashboard.html");

#[utoipa::path(get, path = "/dashboard", tag = "service", operation_id = "dashboard",
    responses((status = 200, description = "The operators' page (HTML, no data)", content_type = "text/html", body = String)))]
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page changes with the binary; a stale cached copy could
            // poll routes this gateway no longer has.
            (header::CACHE_CONTROL, "no-cache"),
            // Only our own origin: the page loads nothing from elsewhere,
            // so an injected script could not either.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        PAGE,
    )
        .into_response()
}

//! The OpenAPI 3.1 document of the REST API, served at
//! `GET /openapi.json`.
//!
//! It is generated from the code: every handler carries a
//! `#[utoipa::path]` annotation, and [`super::router`] registers each route
//! from that annotation (utoipa-axum's `routes!`), so a route cannot be
//! added, moved or removed without the document following. The 501
//! routes of [`super::unsupported`] are described from the same table that
//! registers them. What no annotation says is added here, once for every
//! operation: the error envelope as [`crate::error::GatewayError`] sends
//! it (`default` response), and the API-key schemes.
//!
//! - [`schemas`]: the request and answer shapes that have no Rust type.
//!
//! Checked against a live cluster by `gateway/tests/schemathesis/check.sh`
//! (every answer matches its schema, no 5xx), and route by route by the
//! test `openapi::every_documented_operation_is_routed` in
//! `gateway/tests/cluster`.

pub mod schemas;

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{OpenApi, PartialSchema};

use schemas::ErrorBody;

/// Tags, in the order a reader meets them.
const TAGS: &[(&str, &str)] = &[
    (
        "collections",
        "Collections: create, inspect, change, delete",
    ),
    ("points", "Point writes and reads"),
    ("aliases", "Collection aliases"),
    (
        "cluster",
        "Qdrant's cluster routes and the spec's /api/cluster/{health,metrics,topology}",
    ),
    (
        "operator",
        "Operator routes of the elastic cluster: nodes, drain, rebalance, settings, transfers",
    ),
    (
        "service",
        "Probes, Prometheus, the dashboard, this document",
    ),
    (
        "unsupported",
        "Qdrant features this cluster does not have: every method answers 501 naming the feature",
    ),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vector-db gateway",
        description = "Qdrant-compatible REST API of the sharded, replicated vector database, \
                       and its operator routes. Answers use Qdrant's envelope \
                       (`{result, status: \"ok\", time}`); every error is \
                       `{status: {error}, time}` with a 4xx or 5xx status.",
    ),
    // Schemas reached only through parameters or recursion, which the
    // path annotations do not collect (`document_refs_resolve` checks).
    components(schemas(ErrorBody, schemas::Condition, schemas::Filter, schemas::MinShould, schemas::NestedCondition, schemas::Nested, schemas::WriteConsistencyParam))
)]
struct Base;

/// The document's skeleton: info, tags, the error schema, security
/// schemes. Paths are added by the router as it registers each route.
pub fn base() -> Document {
    let mut doc = Base::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.tags = Some(
        TAGS.iter()
            .map(|(name, description)| {
                utoipa::openapi::tag::TagBuilder::new()
                    .name(*name)
                    .description(Some(*description))
                    .build()
            })
            .collect(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    // Optional: with no key configured every request passes.
    components.add_security_scheme(
        "api-key",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("api-key"))),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc
}

/// What every operation shares, added once the routes are in: the error
/// envelope as the `default` response (any status not listed), and the
/// 501 routes.
pub fn finish(doc: &mut Document, unsupported: &[(&str, &str)]) {
    for (path, feature) in unsupported {
        add_unsupported(doc, path, feature);
    }
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            op.responses
                .responses
                .entry("default".to_string())
                .or_insert_with(|| error_response("An error, in Qdrant's error envelope"));
        }
    }
}

fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// The methods a 501 route is documented with (it answers every method).
const UNSUPPORTED_METHODS: [(HttpMethod, &str); 5] = [
    (HttpMethod::Get, "get"),
    (HttpMethod::Post, "post"),
    (HttpMethod::Put, "put"),
    (HttpMethod::Patch, "patch"),
    (HttpMethod::Delete, "delete"),
];

fn add_unsupported(doc: &mut Document, path: &str, feature: &str) {
    let params: Vec<_> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(String::schema()))
                .build()
        })
        .collect();
    let slug: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    for (method, verb) in UNSUPPORTED_METHODS {
        let op = OperationBuilder::new()
            .tag("unsupported")
            .summary(Some(format!("Not implemented: {feature}")))
            .operation_id(Some(format!("unsupported_{verb}{slug}")))
            .parameters(Some(params.clone()))
            .response(
                "501",
                error_response(&format!("this cluster does not support {feature}")),
            )
            .build();
        doc.paths.add_path_operation(path, vec![method], op);
    }
}

/// The finished document, serialised once.
#[derive(Clone)]
pub struct Served(pub Arc<String>);

impl Served {
    pub fn new(doc: &Document) -> Self {
        // Serialising plain data structures cannot fail; an empty object
        // would still be valid JSON if it did.
        Served(Arc::new(
            serde_json::to_string(doc).unwrap_or_else(|_| "{}".to_string()),
        ))
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
pub async fn serve(Extension(doc): Extension<Served>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.as_str().to_owned(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(crate::api::openapi_document()).expect("serialise")
    }

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    /// A `$ref` to a schema the document lacks makes schemathesis skip
    /// that part of the operation (and clients fail to generate models).
    #[test]
    fn document_refs_resolve() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
            assert!(schemas.contains_key(name), "unresolved $ref {r}");
        }
    }

    /// Operation ids are unique (client generators name methods after
    /// them), every `{param}` of a path is declared as a path parameter,
    /// and every operation answers errors in the documented envelope.
    #[test]
    fn operations_are_well_formed() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let wanted: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for (method, op) in item.as_object().expect("item") {
                let id = op["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                assert_eq!(declared, wanted, "{method} {path}: path parameters");
                assert_eq!(
                    op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path}: default error response"
                );
            }
        }
    }

    /// The routes of the spec and Qdrant's core are there.
    #[test]
    fn core_routes_are_documented() {
        let doc = document();
        for (path, method) in [
            ("/api/cluster/health", "get"),
            ("/api/cluster/metrics", "get"),
            ("/api/cluster/topology", "get"),
            ("/collections/{name}", "put"),
            ("/collections/{name}/points", "put"),
            ("/collections/{name}/points/search", "post"),
            ("/collections/{name}/points/query", "post"),
            ("/openapi.json", "get"),
            ("/collections/{name}/snapshots", "post"),
        ] {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing"
            );
        }
    }
}

//! Payload index declarations, in Qdrant's `field_schema` vocabulary:
//! which payload key a collection indexes and as what. The declarations
//! live in the collection's config (so every replica, a new one or one
//! restarting, builds the same indexes); the indexes themselves are built
//! by each storage node from its payloads.
//!
//! ```json
//! {"field_name": "city", "field_schema": "keyword"}
//! {"field_name": "bio", "field_schema": {"type": "text", "tokenizer": "word", "lowercase": true}}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ValidationError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadSchemaType {
    Keyword,
    Integer,
    Float,
    Bool,
    Geo,
    Text,
    Datetime,
    Uuid,
}

impl PayloadSchemaType {
    pub const ALL: [PayloadSchemaType; 8] = [
        Self::Keyword,
        Self::Integer,
        Self::Float,
        Self::Bool,
        Self::Geo,
        Self::Text,
        Self::Datetime,
        Self::Uuid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keyword => "keyword",
            Self::Integer => "integer",
            Self::Float => "float",
            Self::Bool => "bool",
            Self::Geo => "geo",
            Self::Text => "text",
            Self::Datetime => "datetime",
            Self::Uuid => "uuid",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One declared index: its type and the parameters it was declared with
/// (echoed in `payload_schema`; only ones that do not change results are
/// accepted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PayloadIndexSpec {
    pub data_type: PayloadSchemaType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
}

/// Declared indexes by payload key.
pub type PayloadIndexes = BTreeMap<String, PayloadIndexSpec>;

/// Parameters that only tune Qdrant's storage or planning, never a
/// result: accepted and echoed back.
const HINTS: [&str; 5] = ["is_tenant", "on_disk", "is_principal", "lookup", "range"];

impl PayloadIndexSpec {
    /// Reads Qdrant's `field_schema`: a type name, or an object with
    /// `type` and parameters. A text index tokenizes as filters without an
    /// index do (`word`, lowercased), so other tokenizers, token lengths,
    /// stemmers, stopwords are refused rather than silently ignored.
    pub fn from_field_schema(v: &Value) -> Result<Self, ValidationError> {
        let bad = |reason: String| ValidationError::InvalidRequest { reason };
        let names = || {
            PayloadSchemaType::ALL
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let parse_type = |s: &str| {
            PayloadSchemaType::parse(s).ok_or_else(|| {
                bad(format!(
                    "unknown field_schema type {s:?}: expected one of {}",
                    names()
                ))
            })
        };
        match v {
            Value::String(s) => Ok(Self {
                data_type: parse_type(s)?,
                params: None,
            }),
            Value::Object(o) => {
                let Some(Value::String(t)) = o.get("type") else {
                    return Err(bad("field_schema object needs a string `type`".into()));
                };
                let data_type = parse_type(t)?;
                for (k, val) in o.iter().filter(|(k, _)| *k != "type") {
                    let ok = match (data_type, k.as_str()) {
                        (_, k) if HINTS.contains(&k) => true,
                        (PayloadSchemaType::Text, "tokenizer") => val == "word",
                        (PayloadSchemaType::Text, "lowercase") => val == true,
                        _ => false,
                    };
                    if !ok {
                        return Err(bad(format!(
                            "field_schema {t:?}: `{k}: {val}` is not supported (text indexes use \
                             the `word` tokenizer, lowercased)"
                        )));
                    }
                }
                Ok(Self {
                    data_type,
                    params: Some(o.clone()),
                })
            }
            other => Err(bad(format!(
                "field_schema must be a type name or an object, not {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_qdrant_field_schemas() {
        let k = PayloadIndexSpec::from_field_schema(&json!("keyword")).unwrap();
        assert_eq!(k.data_type, PayloadSchemaType::Keyword);
        let t = PayloadIndexSpec::from_field_schema(
            &json!({"type": "text", "tokenizer": "word", "lowercase": true, "on_disk": false}),
        )
        .unwrap();
        assert_eq!(t.data_type, PayloadSchemaType::Text);
        for bad in [
            json!("keywords"),
            json!(3),
            json!({"tokenizer": "word"}),
            json!({"type": "text", "tokenizer": "prefix"}),
            json!({"type": "text", "min_token_len": 2}),
            json!({"type": "keyword", "tokenizer": "word"}),
        ] {
            assert!(PayloadIndexSpec::from_field_schema(&bad).is_err(), "{bad}");
        }
        let back: PayloadIndexSpec =
            crate::codec::decode(&crate::codec::encode(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}

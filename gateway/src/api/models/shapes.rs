//! Schemas (OpenAPI) of JSON values the models carry as protocol types or
//! raw JSON: point ids and payloads. They live beside the models that
//! use them, so that `api::openapi` depends on the models and not the
//! other way round.

use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// A point id: an unsigned integer or a UUID string.
pub struct ExtendedPointId;

impl PartialSchema for ExtendedPointId {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::Custom("uuid".into()))),
            )
            .description(Some("An unsigned integer or a UUID"))
            .into()
    }
}

impl ToSchema for ExtendedPointId {}

/// A JSON object of arbitrary fields.
pub struct Payload;

impl PartialSchema for Payload {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .description(Some("A JSON object (at most 1 MiB)"))
            .into()
    }
}

impl ToSchema for Payload {}

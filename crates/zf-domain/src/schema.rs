//! OpenAPI descriptions shared by the string newtypes.
//!
//! The newtypes have private fields and custom parsing, so utoipa cannot infer
//! their shape; describing them by hand here keeps each `impl` a single call.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

/// What an API consumer needs to know about a string-valued domain type.
pub(crate) struct StringSchema {
    pub description: &'static str,
    pub example: &'static str,
    pub pattern: Option<&'static str>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub uuid_format: bool,
}

impl StringSchema {
    pub(crate) fn build(self) -> RefOr<Schema> {
        let format = self
            .uuid_format
            .then_some(SchemaFormat::KnownFormat(KnownFormat::Uuid));
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(format)
            .description(Some(self.description))
            .pattern(self.pattern)
            .min_length(self.min_length)
            .max_length(self.max_length)
            .examples([self.example])
            .build()
            .into()
    }
}

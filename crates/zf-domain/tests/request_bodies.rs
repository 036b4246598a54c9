//! `NewClient` as an HTTP request body: invalid JSON must be refused with a
//! message that tells the caller what to fix, and the OpenAPI description must
//! show every field as a constrained string.

use proptest::prelude::*;
use serde_json::{json, Value};
use utoipa::{PartialSchema, ToSchema};
use zf_domain::{NewClient, TaxpayerType, Uscc};

const FIELDS: [&str; 5] = [
    "name",
    "uscc",
    "taxpayer_type",
    "legal_rep_name",
    "legal_rep_id_number",
];

fn valid_body() -> Value {
    json!({
        "name": "福州账房财税咨询有限公司",
        "uscc": "91350100M000100Y43",
        "taxpayer_type": "small_scale",
        "legal_rep_name": "张三",
        "legal_rep_id_number": "11010519491231002X",
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut body = valid_body();
    body[field] = value;
    body
}

fn error_for(body: &Value) -> String {
    match serde_json::from_value::<NewClient>(body.clone()) {
        Ok(client) => panic!("expected an error, got {client:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn valid_body_parses_into_domain_values() {
    let client: NewClient = serde_json::from_value(valid_body()).unwrap();
    assert_eq!(client.uscc.as_str(), "91350100M000100Y43");
    assert_eq!(client.taxpayer_type, TaxpayerType::SmallScale);
    assert_eq!(client.legal_rep_id_number.masked(), "110***********002X");
}

#[test]
fn sloppy_but_valid_input_is_normalised() {
    let mut body = with("uscc", json!(" 91350100m000100y43 "));
    body["legal_rep_id_number"] = json!("11010519491231002x");
    let client: NewClient = serde_json::from_value(body).unwrap();
    assert_eq!(client.uscc.as_str(), "91350100M000100Y43");
    assert_eq!(client.legal_rep_id_number.as_str(), "11010519491231002X");
}

#[test]
fn each_invalid_field_reports_its_reason() {
    let cases = [
        (
            "name",
            json!("x"),
            "client name must be at least 2 characters",
        ),
        (
            "uscc",
            json!("91350100M000100Y4X"),
            "USCC check character is 'X' but should be '3'",
        ),
        (
            "uscc",
            json!("9135010OM000100Y43"),
            "USCC character 8 is 'O'",
        ),
        (
            "taxpayer_type",
            json!("vip"),
            "taxpayer type must be \"general\"",
        ),
        (
            "legal_rep_name",
            json!("张3"),
            "person name must not contain digits",
        ),
        (
            "legal_rep_id_number",
            json!("110105194902300021"),
            "birth date",
        ),
        (
            "legal_rep_id_number",
            json!("110105194912310021"),
            "ID number check character",
        ),
    ];
    for (field, value, reason) in cases {
        let message = error_for(&with(field, value));
        assert!(message.contains(reason), "{field}: {message}");
    }
}

#[test]
fn id_number_errors_do_not_echo_the_number() {
    let message = error_for(&with("legal_rep_id_number", json!("110105194912310021")));
    assert!(!message.contains("19491231"), "{message}");
}

#[test]
fn unknown_missing_and_mistyped_fields_are_refused() {
    let mut body = valid_body();
    body["is_admin"] = json!(true);
    assert!(error_for(&body).contains("unknown field `is_admin`"));

    let mut body = valid_body();
    body.as_object_mut().unwrap().remove("uscc");
    assert!(error_for(&body).contains("missing field `uscc`"));

    assert!(error_for(&with("uscc", json!(91350100))).contains("expected a string"));
}

#[test]
fn openapi_schema_references_constrained_strings() {
    let schema = serde_json::to_value(NewClient::schema()).unwrap();
    for field in FIELDS {
        assert!(
            schema["required"]
                .as_array()
                .unwrap()
                .contains(&json!(field)),
            "{field} should be required: {schema}"
        );
    }
    assert_eq!(
        schema["properties"]["uscc"]["$ref"],
        "#/components/schemas/Uscc"
    );

    let mut components = Vec::new();
    NewClient::schemas(&mut components);
    let names: Vec<&str> = components.iter().map(|(name, _)| name.as_str()).collect();
    for expected in [
        "ClientName",
        "Uscc",
        "TaxpayerType",
        "PersonName",
        "IdNumber",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }

    let uscc = serde_json::to_value(Uscc::schema()).unwrap();
    assert_eq!(uscc["type"], "string");
    assert_eq!(uscc["pattern"], "^[0-9A-HJ-NP-RTUW-Y]{18}$");
    assert_eq!(uscc["examples"][0], "91350100M000100Y43");

    let taxpayer = serde_json::to_value(TaxpayerType::schema()).unwrap();
    assert_eq!(taxpayer["enum"], json!(["general", "small_scale"]));
}

proptest! {
    #[test]
    fn any_unknown_field_is_refused(field in "[a-z_]{1,20}", value in any::<i64>()) {
        prop_assume!(!FIELDS.contains(&field.as_str()));
        let mut body = valid_body();
        body[&field] = json!(value);
        let message = error_for(&body);
        prop_assert!(message.contains(&format!("unknown field `{field}`")), "{}", message);
    }

    #[test]
    fn any_corrupted_uscc_is_refused_with_its_reason(
        position in 0..18usize,
        replacement in "[0-9A-Z]",
    ) {
        let valid = "91350100M000100Y43";
        let replacement = replacement.chars().next().unwrap();
        prop_assume!(valid.chars().nth(position) != Some(replacement));
        let corrupted: String = valid
            .chars()
            .enumerate()
            .map(|(i, c)| if i == position { replacement } else { c })
            .collect();
        let message = error_for(&with("uscc", json!(corrupted)));
        let names_reason = message.contains("USCC check character")
            || message.contains(&format!("USCC character {} is '{replacement}'", position + 1));
        prop_assert!(names_reason, "{}", message);
    }
}

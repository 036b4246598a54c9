//! The CRM value types as parts of request bodies: a body holding them is
//! refused with the field's own reason, and the OpenAPI description shows
//! each as the constrained type it is.

use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{PartialSchema, ToSchema};
use zf_domain::{
    obligations, BankAccount, Date, Email, Fen, FilingCalendar, FilingStatus, Mobile, Obligation,
    Period, Tags, TaxpayerType,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Fields are read through Debug and serde only.
struct ContactBody {
    mobile: Mobile,
    email: Option<Email>,
    bank_account: Option<BankAccount>,
    fee: Fen,
    period: Period,
    start: Date,
    #[serde(default)]
    tags: Tags,
}

fn valid_body() -> Value {
    json!({
        "mobile": "+86 138 1234 1234",
        "email": "Zhang@Example.com",
        "bank_account": "6222 0212 3456 7890",
        "fee": 50_000,
        "period": "2026年1季度",
        "start": "2026/1/1",
        "tags": "重点客户，vip",
    })
}

fn error_for(field: &str, value: Value) -> String {
    let mut body = valid_body();
    body[field] = value;
    match serde_json::from_value::<ContactBody>(body) {
        Ok(parsed) => panic!("expected an error, got {parsed:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_valid_body_is_normalised_and_logs_masked() {
    let body: ContactBody = serde_json::from_value(valid_body()).unwrap();
    assert_eq!(body.mobile.as_str(), "13812341234");
    assert_eq!(body.period.as_string(), "2026-Q1");
    assert_eq!(body.start.as_string(), "2026-01-01");
    assert_eq!(body.tags.to_joined_string(), "vip,重点客户");
    let debug = format!("{body:?}");
    for secret in ["13812341234", "6222021234567890", "Zhang@"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[test]
fn each_invalid_field_reports_its_reason() {
    let cases = [
        (
            "mobile",
            json!("12812341234"),
            "not a mainland mobile number",
        ),
        ("email", json!("zhang@localhost"), "email domain must be"),
        ("bank_account", json!("1234"), "8-32 digits"),
        ("fee", json!(-1), "must be a whole non-negative number"),
        ("fee", json!(12.5), "must be a whole non-negative number"),
        ("fee", json!("500.00"), "expected an amount in fen"),
        ("period", json!("2026Q5"), "quarter must be between 1 and 4"),
        ("start", json!("2026-02-29"), "2026-02 has no day 29"),
        ("tags", json!(["a,b"]), "which separates tags"),
    ];
    for (field, value, reason) in cases {
        let message = error_for(field, value);
        assert!(message.contains(reason), "{field}: {message}");
    }
}

#[test]
fn obligation_schema_references_its_parts() {
    let schema = serde_json::to_value(Obligation::schema()).unwrap();
    assert_eq!(
        schema["properties"]["tax"]["$ref"],
        "#/components/schemas/TaxKind"
    );
    assert_eq!(
        schema["properties"]["period"]["$ref"],
        "#/components/schemas/Period"
    );
    assert_eq!(
        schema["properties"]["due"]["$ref"],
        "#/components/schemas/Date"
    );
    let mut components = Vec::new();
    Obligation::schemas(&mut components);
    let names: Vec<&str> = components.iter().map(|(name, _)| name.as_str()).collect();
    for expected in ["TaxKind", "Period", "Date"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let date = serde_json::to_value(Date::schema()).unwrap();
    assert_eq!(date["format"], "date");
    let status = serde_json::to_value(FilingStatus::schema()).unwrap();
    assert_eq!(
        status["enum"],
        json!(["todo", "in_progress", "filed", "overdue"])
    );
}

#[test]
fn a_years_plan_marks_what_is_overdue_on_a_given_day() {
    let plan = obligations(FilingCalendar::bundled(), TaxpayerType::SmallScale, 2026);
    let today = Date::parse("2026-04-21").unwrap();
    let overdue: Vec<String> = plan
        .iter()
        .filter(|o| FilingStatus::Todo.effective(o.due, today) == FilingStatus::Overdue)
        .map(|o| format!("{} {}", o.tax, o.period))
        .collect();
    assert_eq!(overdue.len(), 10);
    assert_eq!(overdue.last().unwrap(), "iit_withholding 2026-03");
}

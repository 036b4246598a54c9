//! Properties of the free-text names and typed ids.

use proptest::prelude::*;
use zf_domain::{ClientId, ClientName, PersonName, UserId, Username};

proptest! {
    #[test]
    fn name_parsers_never_panic_and_are_idempotent(input in any::<String>()) {
        if let Ok(name) = ClientName::parse(&input) {
            prop_assert_eq!(ClientName::parse(name.as_str()), Ok(name.clone()));
            let len = name.as_str().chars().count();
            prop_assert!((2..=100).contains(&len));
            prop_assert!(!name.as_str().chars().any(char::is_control));
        }
        if let Ok(name) = PersonName::parse(&input) {
            prop_assert_eq!(PersonName::parse(name.as_str()), Ok(name.clone()));
            prop_assert!(!name.as_str().chars().any(|c| c.is_ascii_digit()));
        }
        if let Ok(name) = Username::parse(&input) {
            prop_assert_eq!(Username::parse(name.as_str()), Ok(name.clone()));
        }
    }

    #[test]
    fn usernames_in_the_documented_pattern_parse(input in "[a-zA-Z][a-zA-Z0-9._-]{2,31}") {
        let name = Username::parse(&input).unwrap();
        prop_assert_eq!(name.as_str(), input.to_ascii_lowercase());
    }

    #[test]
    fn ids_round_trip_through_display_and_json(bits in any::<u128>()) {
        let uuid = uuid::Uuid::from_u128(bits);
        let client = ClientId::from_uuid(uuid);
        prop_assert_eq!(ClientId::parse(&client.to_string()), Ok(client));
        let user = UserId::from_uuid(uuid);
        let json = serde_json::to_string(&user).unwrap();
        prop_assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), user);
    }
}

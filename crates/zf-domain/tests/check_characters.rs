//! Properties of the two check-character schemes.
//!
//! Both are "pure" weighted checks over a prime modulus (31 for the USCC, 11
//! for the ID number) whose weights are all non-zero modulo that prime. A
//! single substitution changes the weighted sum by weight × (old − new), a
//! product of two non-zero residues of a prime, hence never 0: the check
//! character must change, so every single-character error is caught. Adjacent
//! transpositions within the first 17 characters are caught too, because
//! neighbouring weights differ (w[i+1] = 3·w[i] mod 31, w[i] = 2·w[i+1] mod 11).

use proptest::prelude::*;
use zf_domain::{IdNumber, IdNumberError, Uscc, UsccError};

const USCC_CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const ID_CHECK_CHARSET: &str = "0123456789X";

fn uscc_first17() -> impl Strategy<Value = String> {
    "[0-9A-HJ-NP-RTUW-Y]{17}"
}

fn valid_uscc() -> impl Strategy<Value = Uscc> {
    uscc_first17().prop_filter_map("charset covers all 17", |s| Uscc::with_check_char(&s))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// 17 leading characters an issuing office could produce: address code
/// starting 1-9, a real birth date in range, any sequence number.
fn id_first17() -> impl Strategy<Value = String> {
    (
        1..=9u32,
        0..100_000u32,
        1900..=2099u32,
        1..=12u32,
        0..1000u32,
    )
        .prop_flat_map(|(first, address, year, month, sequence)| {
            (1..=days_in_month(year, month)).prop_map(move |day| {
                format!("{first}{address:05}{year:04}{month:02}{day:02}{sequence:03}")
            })
        })
}

fn valid_id() -> impl Strategy<Value = IdNumber> {
    id_first17().prop_filter_map("generator only yields valid prefixes", |s| {
        IdNumber::with_check_char(&s)
    })
}

fn replace_at(s: &str, position: usize, ch: char) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| if i == position { ch } else { c })
        .collect()
}

proptest! {
    #[test]
    fn uscc_with_check_char_parses(first17 in uscc_first17()) {
        let uscc = Uscc::with_check_char(&first17).unwrap();
        prop_assert!(uscc.as_str().starts_with(&first17));
        prop_assert_eq!(Uscc::parse(uscc.as_str()), Ok(uscc.clone()));
    }

    #[test]
    fn uscc_parse_normalises_case_and_whitespace(uscc in valid_uscc(), pad in "[ \t\n]{0,3}") {
        let sloppy = format!("{pad}{}{pad}", uscc.as_str().to_ascii_lowercase());
        prop_assert_eq!(Uscc::parse(&sloppy), Ok(uscc));
    }

    #[test]
    fn uscc_any_single_substitution_is_detected(
        uscc in valid_uscc(),
        position in 0..18usize,
        replacement in prop::sample::select(USCC_CHARSET.chars().collect::<Vec<_>>()),
    ) {
        let original = uscc.as_str().chars().nth(position).unwrap();
        prop_assume!(replacement != original);
        let corrupted = replace_at(uscc.as_str(), position, replacement);
        let is_check_mismatch = matches!(Uscc::parse(&corrupted), Err(UsccError::CheckMismatch { .. }));
        prop_assert!(is_check_mismatch);
    }

    #[test]
    fn uscc_adjacent_transposition_is_detected(uscc in valid_uscc(), position in 0..16usize) {
        let chars: Vec<char> = uscc.as_str().chars().collect();
        prop_assume!(chars[position] != chars[position + 1]);
        let mut swapped = chars;
        swapped.swap(position, position + 1);
        let swapped: String = swapped.into_iter().collect();
        prop_assert!(Uscc::parse(&swapped).is_err());
    }

    #[test]
    fn uscc_parse_never_panics_and_is_idempotent(input in any::<String>()) {
        if let Ok(uscc) = Uscc::parse(&input) {
            prop_assert_eq!(Uscc::parse(uscc.as_str()), Ok(uscc.clone()));
        }
    }

    #[test]
    fn id_with_check_char_parses(first17 in id_first17()) {
        let id = IdNumber::with_check_char(&first17).unwrap();
        prop_assert!(id.as_str().starts_with(&first17));
        prop_assert_eq!(IdNumber::parse(id.as_str()), Ok(id.clone()));
    }

    #[test]
    fn id_lower_case_x_and_whitespace_are_normalised(id in valid_id(), pad in "[ \t]{0,2}") {
        let sloppy = format!("{pad}{}{pad}", id.as_str().to_ascii_lowercase());
        prop_assert_eq!(IdNumber::parse(&sloppy), Ok(id));
    }

    #[test]
    fn id_any_single_substitution_is_detected(
        id in valid_id(),
        position in 0..18usize,
        replacement in prop::sample::select(ID_CHECK_CHARSET.chars().collect::<Vec<_>>()),
    ) {
        let original = id.as_str().chars().nth(position).unwrap();
        prop_assume!(replacement != original);
        let corrupted = replace_at(id.as_str(), position, replacement);
        // Depending on where the change lands it may first break the address
        // code or the date, but it must never be accepted.
        prop_assert!(IdNumber::parse(&corrupted).is_err());
        if position < 17 && replacement != 'X' {
            // A digit change that keeps the prefix well-formed must change the
            // check character: that is the mod-11 property itself.
            if let Some(recomputed) = IdNumber::with_check_char(&corrupted[..17]) {
                prop_assert_ne!(recomputed.as_str().chars().last(), id.as_str().chars().last());
            }
        }
    }

    #[test]
    fn id_adjacent_transposition_is_detected(id in valid_id(), position in 0..16usize) {
        let chars: Vec<char> = id.as_str().chars().collect();
        prop_assume!(chars[position] != chars[position + 1]);
        let mut swapped = chars;
        swapped.swap(position, position + 1);
        let swapped: String = swapped.into_iter().collect();
        prop_assert!(IdNumber::parse(&swapped).is_err());
    }

    #[test]
    fn id_masking_never_reveals_the_middle(id in valid_id()) {
        let full = id.as_str();
        let masked = id.masked();
        prop_assert_eq!(masked.chars().count(), 18);
        prop_assert_eq!(&masked[..3], &full[..3]);
        prop_assert_eq!(&masked[3..14], "***********");
        prop_assert_eq!(&masked[14..], &full[14..]);
        let debug = format!("{id:?}");
        prop_assert!(!debug.contains(&full[3..14]));
        prop_assert_eq!(debug, format!("IdNumber({masked})"));
    }

    #[test]
    fn id_parse_never_panics_and_is_idempotent(input in any::<String>()) {
        if let Ok(id) = IdNumber::parse(&input) {
            prop_assert_eq!(IdNumber::parse(id.as_str()), Ok(id.clone()));
        }
    }

    #[test]
    fn id_digit_strings_fail_for_a_stated_reason(input in "[0-9]{17}[0-9X]") {
        match IdNumber::parse(&input) {
            Ok(id) => prop_assert_eq!(id.as_str(), input.as_str()),
            Err(error) => {
                let expected_reason = matches!(
                    error,
                    IdNumberError::BadAddressCode
                        | IdNumberError::BadBirthDate
                        | IdNumberError::CheckMismatch { .. }
                );
                prop_assert!(expected_reason, "unexpected {error:?}");
            }
        }
    }
}

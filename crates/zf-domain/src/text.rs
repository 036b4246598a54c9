//! Free text typed by staff: notes, tags, short labels, job titles.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::names::is_invisible;
use crate::newtype::{display_as_str, string_newtype};
use crate::schema::StringSchema;

/// Which kind of text failed, so one error type can still say which value is
/// wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextKind {
    Position,
    Notes,
    Tag,
    ShortText,
}

impl fmt::Display for TextKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TextKind::Position => "position",
            TextKind::Notes => "notes",
            TextKind::Tag => "tag",
            TextKind::ShortText => "text",
        })
    }
}

/// Why a string is not valid text of its kind. Lengths and positions count
/// Unicode scalar values, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("{kind} must not be empty")]
    Empty { kind: TextKind },
    #[error("{kind} must be at most {max} characters long but has {len}")]
    TooLong {
        kind: TextKind,
        max: usize,
        len: usize,
    },
    #[error(
        "{kind} contains an invisible control or formatting character \
         (U+{code_point:04X}) at position {position}"
    )]
    InvisibleCharacter {
        kind: TextKind,
        position: usize,
        code_point: u32,
    },
    #[error("tag must not contain '{ch}', which separates tags")]
    Separator { ch: char },
    #[error("at most {max} tags are allowed but there are {count}")]
    TooManyTags { max: usize, count: usize },
}

/// Characters that split a typed list of tags: the ASCII comma, the
/// full-width comma and the enumeration comma a Chinese IME produces.
const TAG_SEPARATORS: [char; 3] = [',', '，', '、'];

/// Rules for one-line text: trimmed, bounded, nothing invisible. Invisible
/// characters are refused because two labels that look identical on screen
/// but differ underneath make search, de-duplication and review unreliable.
pub(crate) fn parse_line(input: &str, kind: TextKind, max: usize) -> Result<String, TextError> {
    let trimmed = input.trim();
    check_length(trimmed, kind, max)?;
    check_characters(trimmed, kind, is_invisible)?;
    Ok(trimmed.to_owned())
}

fn check_length(text: &str, kind: TextKind, max: usize) -> Result<(), TextError> {
    let len = text.chars().count();
    if len == 0 {
        return Err(TextError::Empty { kind });
    }
    if len > max {
        return Err(TextError::TooLong { kind, max, len });
    }
    Ok(())
}

fn check_characters(
    text: &str,
    kind: TextKind,
    refused: impl Fn(char) -> bool,
) -> Result<(), TextError> {
    match text.chars().enumerate().find(|&(_, ch)| refused(ch)) {
        Some((index, ch)) => Err(TextError::InvisibleCharacter {
            kind,
            position: index + 1,
            code_point: u32::from(ch),
        }),
        None => Ok(()),
    }
}

/// Directional overrides can make text display in a different order from how
/// it is stored, which hides what a note really says.
fn is_bidi_control(ch: char) -> bool {
    matches!(ch, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Free-form notes (备注), up to 2000 characters, several lines allowed.
///
/// Never empty: a record without notes holds `None`, so "no notes" has one
/// representation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Notes(String);

impl Notes {
    const MAX: usize = 2000;

    /// Line breaks are normalised to `\n` because browsers submit text areas
    /// with `\r\n`; tabs are kept; other control characters are refused.
    pub fn parse(input: &str) -> Result<Self, TextError> {
        let kind = TextKind::Notes;
        let normalised = input.replace("\r\n", "\n").replace('\r', "\n");
        let trimmed = normalised.trim();
        check_length(trimmed, kind, Self::MAX)?;
        check_characters(trimmed, kind, |ch| {
            (ch.is_control() && ch != '\n' && ch != '\t') || is_bidi_control(ch)
        })?;
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A label such as a bank's name, a 主管税务机关 or a lead's source: one line,
/// 1-100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct ShortText(String);

impl ShortText {
    const MAX: usize = 100;

    pub fn parse(input: &str) -> Result<Self, TextError> {
        parse_line(input, TextKind::ShortText, Self::MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One tag on a client or lead, e.g. 重点客户: 1-20 characters with no tag
/// separators, so that a list of tags can be typed as one comma-separated
/// line and read back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Tag(String);

impl Tag {
    const MAX: usize = 20;

    pub fn parse(input: &str) -> Result<Self, TextError> {
        let tag = parse_line(input, TextKind::Tag, Self::MAX)?;
        if let Some(ch) = tag.chars().find(|ch| TAG_SEPARATORS.contains(ch)) {
            return Err(TextError::Separator { ch });
        }
        Ok(Self(tag))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of at most 20 tags, without duplicates, in sorted order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tags(BTreeSet<Tag>);

impl Tags {
    pub const MAX: usize = 20;

    pub fn new() -> Self {
        Self::default()
    }

    /// Collects tags, dropping duplicates; refuses more than [`Tags::MAX`]
    /// distinct ones.
    pub fn from_tags(tags: impl IntoIterator<Item = Tag>) -> Result<Self, TextError> {
        let set: BTreeSet<Tag> = tags.into_iter().collect();
        if set.len() > Self::MAX {
            return Err(TextError::TooManyTags {
                max: Self::MAX,
                count: set.len(),
            });
        }
        Ok(Self(set))
    }

    /// Reads tags typed as one line separated by `,`, `，` or `、`. Blank
    /// entries are skipped, so an empty line is no tags and a trailing comma
    /// is harmless.
    pub fn parse(input: &str) -> Result<Self, TextError> {
        let tags = input
            .split(TAG_SEPARATORS)
            .filter(|piece| !piece.trim().is_empty())
            .map(Tag::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_tags(tags)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, tag: &Tag) -> bool {
        self.0.contains(tag)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    /// `a,b,c`: what [`Tags::parse`] reads back.
    pub fn to_joined_string(&self) -> String {
        self.iter().map(Tag::as_str).collect::<Vec<_>>().join(",")
    }
}

impl<'a> IntoIterator for &'a Tags {
    type Item = &'a Tag;
    type IntoIter = std::collections::btree_set::Iter<'a, Tag>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Tag::as_str))
    }
}

/// Accepts a JSON array of strings (the API's form) or one comma-separated
/// string (what an HTML form field or a spreadsheet cell holds).
struct TagsVisitor;

impl<'de> Visitor<'de> for TagsVisitor {
    type Value = Tags;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a list of tags, or one string of tags separated by commas")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Tags, E> {
        Tags::parse(value).map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tags, A::Error> {
        let mut tags = BTreeSet::new();
        while let Some(tag) = seq.next_element::<Tag>()? {
            tags.insert(tag);
            // Checked as we go, so a huge array is refused without being
            // read to the end.
            if tags.len() > Tags::MAX {
                return Err(de::Error::custom(format_args!(
                    "at most {} tags are allowed",
                    Tags::MAX
                )));
            }
        }
        Ok(Tags(tags))
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TagsVisitor)
    }
}

string_newtype!(Notes, TextError);
string_newtype!(ShortText, TextError);
string_newtype!(Tag, TextError);
display_as_str!(Notes);
display_as_str!(ShortText);
display_as_str!(Tag);

impl utoipa::PartialSchema for Notes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "Free-text notes (备注), 1-2000 characters after trimming; line \
                          breaks and tabs allowed, other control characters refused. Omit \
                          the field rather than sending an empty string.",
            example: "客户要求每月10日前提供银行流水。",
            pattern: None,
            min_length: Some(1),
            max_length: Some(Notes::MAX),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for Notes {}

impl utoipa::PartialSchema for ShortText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "A one-line label, 1-100 characters after trimming, such as a bank \
                          name or a tax authority; no control or invisible characters.",
            example: "国家税务总局福州市鼓楼区税务局",
            pattern: None,
            min_length: Some(1),
            max_length: Some(ShortText::MAX),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for ShortText {}

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        StringSchema {
            description: "A tag, 1-20 characters after trimming; no commas (, ， 、), control \
                          or invisible characters.",
            example: "重点客户",
            pattern: None,
            min_length: Some(1),
            max_length: Some(Tag::MAX),
            uuid_format: false,
        }
        .build()
    }
}

impl utoipa::ToSchema for Tag {}

impl utoipa::PartialSchema for Tags {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::ArrayBuilder;
        ArrayBuilder::new()
            .items(<Tag as utoipa::PartialSchema>::schema())
            .max_items(Some(Tags::MAX))
            .unique_items(true)
            .description(Some(
                "Up to 20 distinct tags; duplicates are dropped and the set is returned \
                 sorted. A single string separated by commas is also accepted.",
            ))
            .build()
            .into()
    }
}

impl utoipa::ToSchema for Tags {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn notes_keep_lines_and_tabs() {
        let notes = Notes::parse("  第一行\r\n\t第二行\r第三行\n ").unwrap();
        assert_eq!(notes.as_str(), "第一行\n\t第二行\n第三行");
    }

    #[test]
    fn notes_refuse_empty_long_and_control() {
        assert_eq!(
            Notes::parse(" \n\t "),
            Err(TextError::Empty {
                kind: TextKind::Notes
            })
        );
        assert!(Notes::parse(&"记".repeat(2000)).is_ok());
        assert_eq!(
            Notes::parse(&"记".repeat(2001)),
            Err(TextError::TooLong {
                kind: TextKind::Notes,
                max: 2000,
                len: 2001
            })
        );
        assert_eq!(
            Notes::parse("a\u{0}b"),
            Err(TextError::InvisibleCharacter {
                kind: TextKind::Notes,
                position: 2,
                code_point: 0
            })
        );
        assert!(Notes::parse("a\u{1b}[31mb").is_err());
        assert!(Notes::parse("a\u{202E}b").is_err());
        assert_eq!(
            Notes::parse("ab\u{7f}").unwrap_err().to_string(),
            "notes contains an invisible control or formatting character (U+007F) at position 3"
        );
    }

    #[test]
    fn short_text_is_one_line() {
        assert_eq!(
            ShortText::parse(" 中国工商银行 ").unwrap().as_str(),
            "中国工商银行"
        );
        assert!(ShortText::parse("a\nb").is_err());
        assert!(ShortText::parse("a\u{200B}b").is_err());
        assert!(ShortText::parse(&"x".repeat(100)).is_ok());
        assert_eq!(
            ShortText::parse(&"x".repeat(101)).unwrap_err().to_string(),
            "text must be at most 100 characters long but has 101"
        );
        assert_eq!(
            ShortText::parse("").unwrap_err().to_string(),
            "text must not be empty"
        );
    }

    #[test]
    fn tag_rules() {
        assert_eq!(Tag::parse(" 重点客户 ").unwrap().as_str(), "重点客户");
        assert_eq!(Tag::parse("高 新").unwrap().as_str(), "高 新");
        for (input, ch) in [("a,b", ','), ("a，b", '，'), ("a、b", '、')] {
            assert_eq!(Tag::parse(input), Err(TextError::Separator { ch }));
        }
        assert!(Tag::parse(&"标".repeat(20)).is_ok());
        assert!(Tag::parse(&"标".repeat(21)).is_err());
        assert!(Tag::parse("").is_err());
        assert!(Tag::parse("a\tb").is_err());
    }

    #[test]
    fn tags_split_dedupe_and_sort() {
        let tags = Tags::parse("vip, 重点客户，高新企业、vip,,").unwrap();
        let listed: Vec<&str> = tags.iter().map(Tag::as_str).collect();
        assert_eq!(listed, ["vip", "重点客户", "高新企业"]);
        assert_eq!(tags.len(), 3);
        assert!(tags.contains(&Tag::parse("vip").unwrap()));
        assert_eq!(tags.to_joined_string(), "vip,重点客户,高新企业");
        assert!(Tags::parse("").unwrap().is_empty());
        assert!(Tags::parse(" , ").unwrap().is_empty());
    }

    #[test]
    fn tags_limit_counts_distinct_tags() {
        let twenty: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        assert_eq!(Tags::parse(&twenty.join(",")).unwrap().len(), 20);
        let with_duplicate = format!("{},t0", twenty.join(","));
        assert_eq!(Tags::parse(&with_duplicate).unwrap().len(), 20);
        let too_many = format!("{},t20", twenty.join(","));
        assert_eq!(
            Tags::parse(&too_many),
            Err(TextError::TooManyTags { max: 20, count: 21 })
        );
    }

    #[test]
    fn tags_serde_from_array_or_string() {
        let tags: Tags = serde_json::from_str(r#"["b", "a", "b"]"#).unwrap();
        assert_eq!(serde_json::to_string(&tags).unwrap(), r#"["a","b"]"#);
        let from_line: Tags = serde_json::from_str(r#""b、a""#).unwrap();
        assert_eq!(from_line, tags);
        let error = serde_json::from_str::<Tags>(r#"["a", ""]"#).unwrap_err();
        assert!(
            error.to_string().contains("tag must not be empty"),
            "{error}"
        );
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        let error = serde_json::from_value::<Tags>(serde_json::json!(many)).unwrap_err();
        assert!(error.to_string().contains("at most 20 tags"), "{error}");
        let error = serde_json::from_str::<Tags>("42").unwrap_err();
        assert!(error.to_string().contains("a list of tags"), "{error}");
    }

    #[test]
    fn newtype_serde_validates() {
        let notes: Notes = serde_json::from_str(r#""line\r\nnext""#).unwrap();
        assert_eq!(serde_json::to_string(&notes).unwrap(), r#""line\nnext""#);
        assert!(serde_json::from_str::<Notes>(r#""""#).is_err());
        assert!(serde_json::from_str::<ShortText>(r#""a\nb""#).is_err());
    }

    proptest! {
        #[test]
        fn parsers_are_idempotent(input in any::<String>()) {
            if let Ok(notes) = Notes::parse(&input) {
                prop_assert_eq!(Notes::parse(notes.as_str()), Ok(notes.clone()));
                prop_assert!(!notes.as_str().contains('\r'));
            }
            if let Ok(text) = ShortText::parse(&input) {
                prop_assert_eq!(ShortText::parse(text.as_str()), Ok(text.clone()));
                prop_assert!(!text.as_str().chars().any(char::is_control));
            }
            if let Ok(tags) = Tags::parse(&input) {
                prop_assert_eq!(Tags::parse(&tags.to_joined_string()), Ok(tags.clone()));
                prop_assert!(tags.len() <= Tags::MAX);
            }
        }
    }
}

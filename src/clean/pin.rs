//! Stream `pin` -> table `pin` (SPEC §2).

use std::borrow::Cow;

use serde::Deserialize;

use super::field::Field;
use super::text::is_null_marker;
use super::{PinRow, Reason, parse_object};

/// A pin message as sent: every field lenient, borrowed from the message where possible.
#[derive(Deserialize)]
struct RawPin<'a> {
    #[serde(borrow, default)]
    index: Field<'a>,
    #[serde(borrow, default)]
    unique_id: Field<'a>,
    #[serde(borrow, default)]
    title: Field<'a>,
    #[serde(borrow, default)]
    description: Field<'a>,
    #[serde(borrow, default)]
    poster_name: Field<'a>,
    #[serde(borrow, default)]
    follower_count: Field<'a>,
    #[serde(borrow, default)]
    tag_list: Field<'a>,
    #[serde(borrow, default)]
    is_image_or_video: Field<'a>,
    #[serde(borrow, default)]
    image_src: Field<'a>,
    #[serde(borrow, default)]
    downloaded: Field<'a>,
    #[serde(borrow, default)]
    save_location: Field<'a>,
    #[serde(borrow, default)]
    category: Field<'a>,
}

const SAVE_LOCATION_PREFIX: &str = "Local save in ";

/// Fields are checked in the order of SPEC §1; the first bad one names the reason. The texts
/// stay borrowed from the message (unless escaped) until the row copies them, all at once,
/// into its one buffer.
pub(crate) fn clean(json: &str) -> Result<PinRow, Reason> {
    let raw: RawPin = parse_object(json)?;
    let ind = raw.index.int("index")?;
    let unique_id = unique_id(raw.unique_id)?;
    let title = raw.title.text("title")?;
    let description = raw.description.text("description")?;
    let poster_name = raw.poster_name.text("poster_name")?;
    let follower_count = follower_count(raw.follower_count)?;
    let tag_list = raw.tag_list.text("tag_list")?;
    let is_image_or_video = raw.is_image_or_video.text("is_image_or_video")?;
    let image_src = raw.image_src.text("image_src")?;
    raw.downloaded.int("downloaded")?;
    let save_location = raw.save_location.raw_text("save_location")?;
    let category = raw.category.text("category")?;
    Ok(PinRow::new(
        ind,
        follower_count,
        [
            Some(&unique_id),
            title.as_deref(),
            description.as_deref(),
            poster_name.as_deref(),
            tag_list.as_deref(),
            is_image_or_video.as_deref(),
            image_src.as_deref(),
            save_location.as_deref().and_then(save_location_path),
            category.as_deref(),
        ],
    ))
}

/// Rule 1: the 36-character 8-4-4-4-12 form, hex digits of either case, kept as given.
fn unique_id(field: Field<'_>) -> Result<Cow<'_, str>, Reason> {
    let id = field.required_text("unique_id")?;
    if is_uuid(&id) {
        Ok(id)
    } else {
        Err(Reason::InvalidUuid)
    }
}

fn is_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Rule 2: `^[0-9]+[kM]?$`, `k` = 1,000, `M` = 1,000,000, fitting an `i64`. Null markers
/// (`User Info Error`) are invalid values here, not null; only JSON null is null.
fn follower_count(field: Field<'_>) -> Result<i64, Reason> {
    match field {
        Field::Int(n) if n >= 0 => Ok(n),
        Field::UInt(_) => Err(Reason::FollowerCountOverflow),
        other => match other.raw_text("follower_count")? {
            Some(text) => parse_follower_count(&text),
            None => Err(Reason::NullField("follower_count")),
        },
    }
}

fn parse_follower_count(text: &str) -> Result<i64, Reason> {
    let (digits, multiplier) = match text.as_bytes().last() {
        Some(b'k') => (&text[..text.len() - 1], 1_000),
        Some(b'M') => (&text[..text.len() - 1], 1_000_000),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reason::invalid_follower_count(text));
    }
    digits
        .bytes()
        .try_fold(0i64, |n, b| {
            n.checked_mul(10)?.checked_add(i64::from(b - b'0'))
        })
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or(Reason::FollowerCountOverflow)
}

/// Rule 4, then rule 5: the `Local save in ` prefix goes, and what is left is null when it
/// is a null marker (so `Local save in ` alone gives null, not an empty path).
fn save_location_path(text: &str) -> Option<&str> {
    let path = text.strip_prefix(SAVE_LOCATION_PREFIX).unwrap_or(text);
    (!is_null_marker(path)).then_some(path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::clean::PinFields;
    use crate::clean::text::NULL_MARKERS;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    pub(crate) const UUID: &str = "55abcd28-bda1-4453-bbcd-1427fb3aa49b";

    /// A valid pin message (invented values).
    pub(crate) fn valid() -> Map<String, Value> {
        let Value::Object(map) = json!({
            "index": 7,
            "unique_id": UUID,
            "title": "A Title",
            "description": "Some words.",
            "poster_name": "Poster",
            "follower_count": "12k",
            "tag_list": "a,b,c",
            "is_image_or_video": "image",
            "image_src": "https://example.com/x.jpg",
            "downloaded": 1,
            "save_location": "Local save in /data/art",
            "category": "art"
        }) else {
            unreachable!()
        };
        map
    }

    fn expected() -> PinRow {
        PinRow::from(PinFields {
            ind: 7,
            unique_id: UUID.into(),
            title: Some("A Title".into()),
            description: Some("Some words.".into()),
            follower_count: 12_000,
            poster_name: Some("Poster".into()),
            tag_list: Some("a,b,c".into()),
            is_image_or_video: Some("image".into()),
            image_src: Some("https://example.com/x.jpg".into()),
            save_location: Some("/data/art".into()),
            category: Some("art".into()),
        })
    }

    fn run(map: &Map<String, Value>) -> Result<PinRow, Reason> {
        clean(&serde_json::to_string(map).unwrap())
    }

    fn with(key: &str, value: Value) -> Result<PinRow, Reason> {
        let mut map = valid();
        map.insert(key.into(), value);
        run(&map)
    }

    const FIELDS: [&str; 12] = [
        "index",
        "unique_id",
        "title",
        "description",
        "poster_name",
        "follower_count",
        "tag_list",
        "is_image_or_video",
        "image_src",
        "downloaded",
        "save_location",
        "category",
    ];

    type Getter = fn(&PinRow) -> Option<&str>;

    /// The optional text fields and how to read each from a row.
    const TEXT_FIELDS: [(&str, Getter); 8] = [
        ("title", PinRow::title),
        ("description", PinRow::description),
        ("poster_name", PinRow::poster_name),
        ("tag_list", PinRow::tag_list),
        ("is_image_or_video", PinRow::is_image_or_video),
        ("image_src", PinRow::image_src),
        ("save_location", PinRow::save_location),
        ("category", PinRow::category),
    ];

    #[test]
    fn valid_record() {
        assert_eq!(run(&valid()), Ok(expected()));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut map = valid();
        map.insert("extra".into(), json!({"nested": [1, 2, {"x": null}]}));
        map.insert("ind".into(), json!("not the pin key"));
        assert_eq!(run(&map), Ok(expected()));
    }

    #[test]
    fn every_missing_field_is_named() {
        for field in FIELDS {
            let mut map = valid();
            map.remove(field);
            assert_eq!(run(&map), Err(Reason::MissingField(field)), "{field}");
        }
    }

    #[test]
    fn null_markers_become_null_in_every_text_field() {
        for (field, get) in TEXT_FIELDS {
            for marker in NULL_MARKERS {
                for value in [marker.to_string(), format!("  {marker}\t")] {
                    let row = with(field, json!(value)).unwrap();
                    assert_eq!(get(&row), None, "{field} {value:?}");
                }
            }
            let row = with(field, Value::Null).unwrap();
            assert_eq!(get(&row), None, "{field} null");
        }
    }

    #[test]
    fn text_fields_keep_other_text_as_is() {
        for (field, get) in TEXT_FIELDS {
            let row = with(field, json!("  spaced \u{e9} ")).unwrap();
            assert_eq!(get(&row), Some("  spaced \u{e9} "), "{field}");
            let row = with(field, json!(42)).unwrap();
            assert_eq!(get(&row), Some("42"), "{field}");
            let row = with(field, json!(4.5)).unwrap();
            assert_eq!(get(&row), Some("4.5"), "{field}");
            for wrong in [json!(true), json!({"a": 1}), json!(["a"])] {
                assert_eq!(
                    with(field, wrong.clone()),
                    Err(Reason::WrongType {
                        field,
                        expected: "string"
                    }),
                    "{field} {wrong}"
                );
            }
        }
    }

    #[test]
    fn index_and_downloaded() {
        let row = with("index", json!("5730")).unwrap();
        assert_eq!(row.ind, 5730);
        assert_eq!(with("index", json!(5730.0)).unwrap().ind, 5730);
        assert_eq!(with("index", json!(" 5730 ")).unwrap().ind, 5730);
        for field in ["index", "downloaded"] {
            assert_eq!(
                with(field, json!("seven")),
                Err(Reason::WrongType {
                    field,
                    expected: "integer"
                })
            );
            assert_eq!(
                with(field, json!(1.5)),
                Err(Reason::WrongType {
                    field,
                    expected: "integer"
                })
            );
            assert_eq!(with(field, Value::Null), Err(Reason::NullField(field)));
            assert_eq!(
                with(field, json!(u64::MAX)),
                Err(Reason::IntegerOverflow { field })
            );
        }
        // downloaded is validated, then dropped.
        assert_eq!(with("downloaded", json!(0)), Ok(expected()));
        assert_eq!(with("downloaded", json!("1")), Ok(expected()));
    }

    #[test]
    fn unique_id_rules() {
        let upper = UUID.to_uppercase();
        let ok: &[Value] = &[json!(UUID), json!(upper)];
        for value in ok {
            assert_eq!(
                with("unique_id", value.clone()).unwrap().unique_id(),
                value.as_str().unwrap()
            );
        }
        let invalid = [
            json!("55abcd28bda14453bbcd1427fb3aa49b"),
            json!("{55abcd28-bda1-4453-bbcd-1427fb3aa49b}"),
            json!(" 55abcd28-bda1-4453-bbcd-1427fb3aa49b"),
            json!("55abcd28-bda1-4453-bbcd-1427fb3aa49"),
            json!("55abcd28-bda1-4453-bbcd-1427fb3aa49bb"),
            json!("55abcd28-bda1-4453-bbcd_1427fb3aa49b"),
            json!("55abcd2g-bda1-4453-bbcd-1427fb3aa49b"),
            json!("55abcd28-bda14-453-bbcd-1427fb3aa49b"),
            json!("55abcd28-bda1-4453-bbcd-1427fb3aa4\u{e9}"),
            json!(12345),
        ];
        for value in invalid {
            assert_eq!(
                with("unique_id", value.clone()),
                Err(Reason::InvalidUuid),
                "{value}"
            );
        }
        assert_eq!(
            with("unique_id", Value::Null),
            Err(Reason::NullField("unique_id"))
        );
        for marker in NULL_MARKERS {
            assert_eq!(
                with("unique_id", json!(marker)),
                Err(Reason::NullField("unique_id")),
                "{marker:?}"
            );
        }
        assert_eq!(
            with("unique_id", json!([UUID])),
            Err(Reason::WrongType {
                field: "unique_id",
                expected: "string"
            })
        );
    }

    #[test]
    fn follower_count_rules() {
        let invalid = |s: &str| Err(Reason::InvalidFollowerCount(s.into()));
        let cases: Vec<(Value, Result<i64, Reason>)> = vec![
            (json!("0"), Ok(0)),
            (json!("12"), Ok(12)),
            (json!("0012"), Ok(12)),
            (json!("12k"), Ok(12_000)),
            (json!("3M"), Ok(3_000_000)),
            (json!("9223372036854775807"), Ok(i64::MAX)),
            (json!("9223372036854775k"), Ok(9_223_372_036_854_775_000)),
            (json!(5000), Ok(5000)),
            (json!(0), Ok(0)),
            (json!("User Info Error"), invalid("User Info Error")),
            (json!(" User Info Error "), invalid(" User Info Error ")),
            (json!(""), invalid("")),
            (json!("1.5k"), invalid("1.5k")),
            (json!("12K"), invalid("12K")),
            (json!("12m"), invalid("12m")),
            (json!("12kM"), invalid("12kM")),
            (json!("k"), invalid("k")),
            (json!("M"), invalid("M")),
            (json!(" 12"), invalid(" 12")),
            (json!("12 "), invalid("12 ")),
            (json!("-12"), invalid("-12")),
            (json!("+12"), invalid("+12")),
            (json!("12B"), invalid("12B")),
            (json!("１２"), invalid("１２")),
            (json!(-5), invalid("-5")),
            (json!(5000.0), invalid("5000.0")),
            (json!(1.5), invalid("1.5")),
            (
                json!("99999999999999999999"),
                Err(Reason::FollowerCountOverflow),
            ),
            (
                json!("9223372036854775808"),
                Err(Reason::FollowerCountOverflow),
            ),
            (
                json!("9223372036854776k"),
                Err(Reason::FollowerCountOverflow),
            ),
            (json!("9223372036855M"), Err(Reason::FollowerCountOverflow)),
            (json!(u64::MAX), Err(Reason::FollowerCountOverflow)),
            (Value::Null, Err(Reason::NullField("follower_count"))),
            (
                json!(true),
                Err(Reason::WrongType {
                    field: "follower_count",
                    expected: "string",
                }),
            ),
            (
                json!({"n": 1}),
                Err(Reason::WrongType {
                    field: "follower_count",
                    expected: "string",
                }),
            ),
        ];
        for (value, expected) in cases {
            let got = with("follower_count", value.clone()).map(|r| r.follower_count);
            assert_eq!(got, expected, "{value}");
        }
    }

    #[test]
    fn invalid_follower_count_is_truncated_to_40_chars() {
        let long = "é".repeat(100);
        let Err(Reason::InvalidFollowerCount(kept)) = with("follower_count", json!(long)) else {
            panic!("expected InvalidFollowerCount")
        };
        assert_eq!(kept, "é".repeat(40));
    }

    #[test]
    fn save_location_prefix() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Local save in /data/art", Some("/data/art")),
            ("Local save in Local save in /x", Some("Local save in /x")),
            ("/data/art", Some("/data/art")),
            ("local save in /data/art", Some("local save in /data/art")),
            (" Local save in /data/art", Some(" Local save in /data/art")),
            ("Local save in  /data/art ", Some(" /data/art ")),
            ("Local save in", Some("Local save in")),
            ("Local save in ", None),
            ("Local save in   ", None),
            ("Local save in Image src error.", None),
            ("", None),
        ];
        for (raw, expected) in cases {
            let row = with("save_location", json!(raw)).unwrap();
            assert_eq!(row.save_location(), *expected, "{raw:?}");
        }
    }

    #[test]
    fn first_bad_field_in_spec_order_names_the_reason() {
        let mut map = valid();
        map.insert("unique_id".into(), json!("nope"));
        map.insert("follower_count".into(), json!("nope"));
        map.remove("category");
        assert_eq!(run(&map), Err(Reason::InvalidUuid));
    }

    // ---- property tests ----

    fn text_value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{0,30}",
            "\\PC{0,20}",
            prop::sample::select(NULL_MARKERS.to_vec()).prop_map(String::from),
        ]
    }

    /// Any value, leaning towards the shapes a pin field can take.
    pub(crate) fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            text_value().prop_map(Value::String),
            "[0-9]{1,22}[kMK.]?[0-9]?".prop_map(Value::String),
            Just(Value::String(UUID.into())),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}".prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A valid pin record and the row it must clean to.
    fn valid_pin() -> impl Strategy<Value = (Map<String, Value>, PinRow)> {
        let text = || prop::option::of(text_value());
        (
            (
                any::<i64>(),
                prop::bool::ANY,
                "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                0u64..1_000_000,
                prop::sample::select(vec!["", "k", "M"]),
            ),
            (text(), text(), text(), text(), text(), text(), text()),
            (prop::option::of("[ -~]{0,20}"), any::<i64>()),
        )
            .prop_map(
                |(
                    (ind, ind_as_string, unique_id, count, suffix),
                    (title, description, poster, tags, kind, image, category),
                    (location, downloaded),
                )| {
                    let value = |t: &Option<String>| t.clone().map_or(Value::Null, Value::String);
                    let clean = |t: &Option<String>| {
                        t.clone().filter(|s| !NULL_MARKERS.contains(&s.trim()))
                    };
                    let mut map = Map::new();
                    map.insert(
                        "index".into(),
                        if ind_as_string {
                            json!(ind.to_string())
                        } else {
                            json!(ind)
                        },
                    );
                    map.insert("unique_id".into(), json!(unique_id));
                    map.insert("title".into(), value(&title));
                    map.insert("description".into(), value(&description));
                    map.insert("poster_name".into(), value(&poster));
                    map.insert("follower_count".into(), json!(format!("{count}{suffix}")));
                    map.insert("tag_list".into(), value(&tags));
                    map.insert("is_image_or_video".into(), value(&kind));
                    map.insert("image_src".into(), value(&image));
                    map.insert("downloaded".into(), json!(downloaded));
                    map.insert(
                        "save_location".into(),
                        value(&location.as_ref().map(|l| format!("Local save in {l}"))),
                    );
                    map.insert("category".into(), value(&category));
                    let multiplier = match suffix {
                        "k" => 1_000,
                        "M" => 1_000_000,
                        _ => 1,
                    };
                    let row = PinRow::from(PinFields {
                        ind,
                        unique_id,
                        title: clean(&title),
                        description: clean(&description),
                        follower_count: count as i64 * multiplier,
                        poster_name: clean(&poster),
                        tag_list: clean(&tags),
                        is_image_or_video: clean(&kind),
                        image_src: clean(&image),
                        save_location: clean(&location),
                        category: clean(&category),
                    });
                    (map, row)
                },
            )
    }

    proptest! {
        #[test]
        fn valid_records_clean_to_the_expected_row((map, row) in valid_pin()) {
            prop_assert_eq!(run(&map), Ok(row));
        }

        /// Valid records with fields replaced by anything, or removed: never a panic, and a
        /// row only when the replaced values happen to be acceptable.
        #[test]
        fn mutated_records_never_panic(
            (map, _) in valid_pin(),
            changes in prop::collection::vec((prop::sample::select(FIELDS.to_vec()), prop::option::of(any_value())), 0..5),
        ) {
            let mut map = map;
            for (field, value) in changes {
                match value {
                    Some(value) => map.insert(field.into(), value),
                    None => map.remove(field),
                };
            }
            let _ = run(&map);
        }
    }
}

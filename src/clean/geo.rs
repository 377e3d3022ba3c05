//! Stream `geo` -> table `geo` (SPEC §2).

use serde::Deserialize;

use super::field::Field;
use super::time::parse_timestamp;
use super::{Degrees, GeoRow, Reason, parse_object};

#[derive(Deserialize)]
struct RawGeo<'a> {
    #[serde(borrow, default)]
    ind: Field<'a>,
    #[serde(borrow, default)]
    timestamp: Field<'a>,
    #[serde(borrow, default)]
    latitude: Field<'a>,
    #[serde(borrow, default)]
    longitude: Field<'a>,
    #[serde(borrow, default)]
    country: Field<'a>,
}

/// Fields are checked in the order of SPEC §1; the first bad one names the reason.
pub(crate) fn clean(json: &str) -> Result<GeoRow, Reason> {
    let raw: RawGeo = parse_object(json)?;
    let ind = raw.ind.int("ind")?;
    let timestamp = timestamp(raw.timestamp, "timestamp")?;
    let latitude = raw.latitude.float("latitude")?;
    if !(-90.0..=90.0).contains(&latitude) {
        return Err(Reason::LatitudeOutOfRange);
    }
    let longitude = raw.longitude.float("longitude")?;
    if !(-180.0..=180.0).contains(&longitude) {
        return Err(Reason::LongitudeOutOfRange);
    }
    let country = raw.country.text("country")?.map(|c| c.into_owned());
    Ok(GeoRow {
        ind,
        country,
        coordinates: [Degrees(latitude), Degrees(longitude)],
        timestamp,
    })
}

/// A required timestamp field: a text field (null markers give null), parsed to UTC micros.
pub(crate) fn timestamp(field: Field<'_>, name: &'static str) -> Result<i64, Reason> {
    let text = field.required_text(name)?;
    parse_timestamp(&text).ok_or(Reason::InvalidTimestamp { field: name })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clean::text::NULL_MARKERS;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    /// 2022-07-07 00:18:41 UTC.
    const MICROS: i64 = 1_657_153_121_000_000;

    fn valid() -> Map<String, Value> {
        let Value::Object(map) = json!({
            "ind": 7,
            "timestamp": "2022-07-07 00:18:41",
            "latitude": -88.8298,
            "longitude": -170.188,
            "country": "Utopia"
        }) else {
            unreachable!()
        };
        map
    }

    fn expected() -> GeoRow {
        GeoRow {
            ind: 7,
            country: Some("Utopia".into()),
            coordinates: [Degrees(-88.8298), Degrees(-170.188)],
            timestamp: MICROS,
        }
    }

    fn run(map: &Map<String, Value>) -> Result<GeoRow, Reason> {
        clean(&serde_json::to_string(map).unwrap())
    }

    fn with(key: &str, value: Value) -> Result<GeoRow, Reason> {
        let mut map = valid();
        map.insert(key.into(), value);
        run(&map)
    }

    const FIELDS: [&str; 5] = ["ind", "timestamp", "latitude", "longitude", "country"];

    #[test]
    fn valid_record_and_extra_fields() {
        assert_eq!(run(&valid()), Ok(expected()));
        let mut map = valid();
        map.insert("index".into(), json!([1]));
        map.insert("coordinates".into(), json!({"x": 1}));
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
    fn country_null_markers() {
        for marker in NULL_MARKERS {
            assert_eq!(
                with("country", json!(marker)).unwrap().country,
                None,
                "{marker:?}"
            );
            let padded = format!(" {marker} ");
            assert_eq!(with("country", json!(padded)).unwrap().country, None);
        }
        assert_eq!(with("country", Value::Null).unwrap().country, None);
        assert_eq!(
            with("country", json!(" Utopia "))
                .unwrap()
                .country
                .as_deref(),
            Some(" Utopia ")
        );
        assert_eq!(
            with("country", json!(12)).unwrap().country.as_deref(),
            Some("12")
        );
        assert_eq!(
            with("country", json!(false)),
            Err(Reason::WrongType {
                field: "country",
                expected: "string"
            })
        );
    }

    #[test]
    fn coordinates() {
        let ok: &[(&str, Value, f64)] = &[
            ("latitude", json!(90.0), 90.0),
            ("latitude", json!(-90), -90.0),
            ("latitude", json!(0), 0.0),
            ("latitude", json!("-88.8298"), -88.8298),
            ("latitude", json!(" 45.5 "), 45.5),
            ("longitude", json!(180), 180.0),
            ("longitude", json!(-180.0), -180.0),
            ("longitude", json!("-170.188"), -170.188),
        ];
        for (field, value, number) in ok {
            let row = with(field, value.clone()).unwrap();
            let got = if *field == "latitude" {
                row.coordinates[0]
            } else {
                row.coordinates[1]
            };
            assert_eq!(got, Degrees(*number), "{field} {value}");
        }
        let bad: &[(&str, Value, Reason)] = &[
            ("latitude", json!(90.0001), Reason::LatitudeOutOfRange),
            ("latitude", json!(-91), Reason::LatitudeOutOfRange),
            ("latitude", json!("NaN"), Reason::LatitudeOutOfRange),
            ("latitude", json!("inf"), Reason::LatitudeOutOfRange),
            ("latitude", json!("1e999"), Reason::LatitudeOutOfRange),
            ("latitude", json!(u64::MAX), Reason::LatitudeOutOfRange),
            ("longitude", json!(180.5), Reason::LongitudeOutOfRange),
            ("longitude", json!(-1000), Reason::LongitudeOutOfRange),
            ("longitude", json!("-inf"), Reason::LongitudeOutOfRange),
            ("latitude", Value::Null, Reason::NullField("latitude")),
            ("longitude", Value::Null, Reason::NullField("longitude")),
        ];
        for (field, value, reason) in bad {
            assert_eq!(
                with(field, value.clone()),
                Err(reason.clone()),
                "{field} {value}"
            );
        }
        for field in ["latitude", "longitude"] {
            for value in [
                json!("north"),
                json!(""),
                json!(true),
                json!([1.0]),
                json!({}),
            ] {
                assert_eq!(
                    with(field, value.clone()),
                    Err(Reason::WrongType {
                        field,
                        expected: "number"
                    }),
                    "{field} {value}"
                );
            }
        }
    }

    #[test]
    fn ind_leniency() {
        assert_eq!(with("ind", json!("7")), Ok(expected()));
        assert_eq!(with("ind", json!(7.0)), Ok(expected()));
        assert_eq!(
            with("ind", json!("seven")),
            Err(Reason::WrongType {
                field: "ind",
                expected: "integer"
            })
        );
        assert_eq!(with("ind", Value::Null), Err(Reason::NullField("ind")));
    }

    #[test]
    fn timestamps() {
        let ok = [
            "2022-07-07 00:18:41",
            "2022-07-07T00:18:41",
            "2022-07-07T00:18:41Z",
            "2022-07-07T02:18:41+02:00",
            "2022-07-06T23:18:41-01:00",
            "2022-07-07T00:18:41.000000",
        ];
        for text in ok {
            assert_eq!(
                with("timestamp", json!(text)).unwrap().timestamp,
                MICROS,
                "{text}"
            );
        }
        assert_eq!(
            with("timestamp", json!("2022-07-07T00:18:41.25Z"))
                .unwrap()
                .timestamp,
            MICROS + 250_000
        );
        let invalid = Err(Reason::InvalidTimestamp { field: "timestamp" });
        for value in [
            json!("2021-02-30 00:00:00"),
            json!("07/07/2022"),
            json!(1657153121),
        ] {
            assert_eq!(with("timestamp", value.clone()), invalid, "{value}");
        }
        assert_eq!(
            with("timestamp", Value::Null),
            Err(Reason::NullField("timestamp"))
        );
        assert_eq!(
            with("timestamp", json!("")),
            Err(Reason::NullField("timestamp"))
        );
        assert_eq!(
            with("timestamp", json!({})),
            Err(Reason::WrongType {
                field: "timestamp",
                expected: "string"
            })
        );
    }

    fn valid_geo() -> impl Strategy<Value = (Map<String, Value>, GeoRow)> {
        (
            any::<i64>(),
            0i64..253_402_300_800,
            // At most 15 significant digits: serde_json (without its `float_roundtrip`
            // feature) parses those exactly, longer ones may be 1 ulp off.
            (-900_000_000i64..=900_000_000).prop_map(|n| n as f64 / 1e7),
            (-1_800_000_000i64..=1_800_000_000).prop_map(|n| n as f64 / 1e7),
            prop::option::of("[ -~]{0,20}"),
            prop::bool::ANY,
        )
            .prop_map(|(ind, seconds, lat, lon, country, as_strings)| {
                let time = chrono::DateTime::from_timestamp(seconds, 0).unwrap();
                let number = |x: f64| {
                    if as_strings {
                        json!(x.to_string())
                    } else {
                        json!(x)
                    }
                };
                let mut map = Map::new();
                map.insert("ind".into(), json!(ind));
                map.insert(
                    "timestamp".into(),
                    json!(time.format("%Y-%m-%d %H:%M:%S").to_string()),
                );
                map.insert("latitude".into(), number(lat));
                map.insert("longitude".into(), number(lon));
                map.insert(
                    "country".into(),
                    country.clone().map_or(Value::Null, Value::String),
                );
                let row = GeoRow {
                    ind,
                    country: country.filter(|c| !NULL_MARKERS.contains(&c.trim())),
                    coordinates: [Degrees(lat), Degrees(lon)],
                    timestamp: seconds * 1_000_000,
                };
                (map, row)
            })
    }

    proptest! {
        #[test]
        fn valid_records_clean_to_the_expected_row((map, row) in valid_geo()) {
            prop_assert_eq!(run(&map), Ok(row));
        }

        #[test]
        fn mutated_records_never_panic(
            (map, _) in valid_geo(),
            changes in prop::collection::vec((prop::sample::select(FIELDS.to_vec()), prop::option::of(crate::clean::pin::tests::any_value())), 0..4),
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

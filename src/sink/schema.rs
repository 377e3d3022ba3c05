//! The tables' columns (SPEC §2, §4), their Parquet settings (the job's [`Codec`], dictionaries
//! where values repeat) and the conversion of rows to and from Arrow batches.
//!
//! Timestamps are `Timestamp(Microsecond, "UTC")`: without the timezone delta-rs would write
//! `timestamp_ntz` and raise the protocol to (3,7), which Databricks' older readers reject.

use std::sync::Arc;

use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, Float64Builder, Int32Builder, Int64Builder, ListBuilder, StringArray,
    StringBuilder, TimestampMicrosecondBuilder,
};
use deltalake::arrow::datatypes::{
    DataType, Field, Float64Type, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType,
};
use deltalake::arrow::error::ArrowError;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::parquet::basic::{Compression, GzipLevel, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::schema::types::ColumnPath;

use crate::clean::{Degrees, GeoRow, PinRow, PinText, Row, UserRow};
use crate::stream::Stream;
use crate::table::{QuarantineRow, Table, TableRow};

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// The Arrow schema a table is created with.
pub fn arrow_schema(table: Table) -> SchemaRef {
    let fields = match table {
        Table::Pin => vec![
            Field::new("ind", DataType::Int64, false),
            text("unique_id", false),
            text("title", true),
            text("description", true),
            Field::new("follower_count", DataType::Int64, false),
            text("poster_name", true),
            text("tag_list", true),
            text("is_image_or_video", true),
            text("image_src", true),
            text("save_location", true),
            text("category", true),
        ],
        Table::Geo => vec![
            Field::new("ind", DataType::Int64, false),
            text("country", true),
            Field::new(
                "coordinates",
                DataType::List(Arc::new(Field::new("element", DataType::Float64, true))),
                false,
            ),
            Field::new("timestamp", timestamp(), false),
        ],
        Table::User => vec![
            Field::new("ind", DataType::Int64, false),
            text("user_name", false),
            Field::new("age", DataType::Int32, false),
            Field::new("date_joined", timestamp(), false),
        ],
        Table::Quarantine => vec![
            text("stream", true),
            text("source", false),
            Field::new("received_at", timestamp(), false),
            text("raw", false),
            text("reason", false),
        ],
    };
    Arc::new(Schema::new(fields))
}

/// The codec of the Parquet files pinstream writes (a job's `compression`, `--compression`).
/// Only codecs that every Delta reader decodes: Snappy (the default, as in Spark and Delta),
/// zstd (level 1-22, 1 unless given), gzip (level 0-9, 6 unless given), LZ4 (Parquet's
/// `LZ4_RAW`: its older `LZ4` is deprecated) and none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codec(Compression);

impl Codec {
    /// Snappy: the codec unless a job says otherwise.
    pub const DEFAULT: Codec = Codec(Compression::SNAPPY);
}

impl Default for Codec {
    fn default() -> Self {
        Codec::DEFAULT
    }
}

impl std::str::FromStr for Codec {
    type Err = String;

    /// `snappy`, `zstd`, `zstd(3)`, `gzip`, `gzip(9)`, `lz4`, `uncompressed` (or `none`),
    /// in any case.
    fn from_str(text: &str) -> Result<Codec, String> {
        let lower = text.trim().to_ascii_lowercase();
        let (name, level) = match lower.split_once('(') {
            Some((name, rest)) => {
                let level = rest
                    .strip_suffix(')')
                    .and_then(|level| level.trim().parse::<u32>().ok())
                    .ok_or_else(|| format!("`{text}`: a level is a number, as in zstd(3)"))?;
                (name.trim(), Some(level))
            }
            None => (lower.as_str(), None),
        };
        let no_level = |codec: Compression| match level {
            None => Ok(codec),
            Some(_) => Err(format!("`{text}`: {name} takes no level")),
        };
        let compression = match name {
            "snappy" => no_level(Compression::SNAPPY)?,
            "lz4" | "lz4_raw" => no_level(Compression::LZ4_RAW)?,
            "uncompressed" | "none" => no_level(Compression::UNCOMPRESSED)?,
            "zstd" => Compression::ZSTD(match level {
                None => ZstdLevel::default(),
                Some(level) => i32::try_from(level)
                    .ok()
                    .and_then(|level| ZstdLevel::try_new(level).ok())
                    .ok_or_else(|| format!("`{text}`: zstd levels are 1 to 22"))?,
            }),
            "gzip" => Compression::GZIP(match level {
                None => GzipLevel::default(),
                Some(level) => GzipLevel::try_new(level)
                    .map_err(|_| format!("`{text}`: gzip levels are 0 to 9"))?,
            }),
            _ => {
                return Err(format!(
                    "`{text}`: unknown codec (snappy, zstd, zstd(<1-22>), gzip, gzip(<0-9>), lz4, uncompressed)"
                ));
            }
        };
        Ok(Codec(compression))
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Compression::ZSTD(level) => write!(f, "zstd({})", level.compression_level()),
            Compression::GZIP(level) => write!(f, "gzip({})", level.compression_level()),
            Compression::LZ4_RAW => f.write_str("lz4"),
            Compression::UNCOMPRESSED => f.write_str("uncompressed"),
            other => write!(f, "{}", other.to_string().to_ascii_lowercase()),
        }
    }
}

/// Parquet settings per table: the job's codec, and dictionary encoding only for the columns
/// with few distinct values (a dictionary of unique titles or ids costs time and saves
/// nothing).
pub fn writer_properties(table: Table, codec: Codec) -> WriterProperties {
    let repeated: &[&str] = match table {
        Table::Pin => &[
            "poster_name",
            "is_image_or_video",
            "save_location",
            "category",
        ],
        Table::Geo => &["country"],
        Table::User => &[],
        Table::Quarantine => &["stream", "reason"],
    };
    repeated
        .iter()
        .fold(
            WriterProperties::builder()
                .set_compression(codec.0)
                .set_dictionary_enabled(false),
            |builder, column| {
                builder.set_column_dictionary_enabled(ColumnPath::from(*column), true)
            },
        )
        .build()
}

/// Parquet settings of the aggregate tables' snapshots: the job's codec (small tables of
/// repeated names: dictionaries as Parquet's defaults have them).
pub fn aggregate_writer_properties(codec: Codec) -> WriterProperties {
    WriterProperties::builder().set_compression(codec.0).build()
}

/// A string column, its value buffer sized exactly first (a guess made the long texts'
/// buffers grow by reallocation, copying them again: 1.3% of a distinct-heavy run).
pub fn strings<'a>(
    capacity: usize,
    values: impl Iterator<Item = Option<&'a str>> + Clone,
) -> ArrayRef {
    let bytes = values.clone().map(|value| value.map_or(0, str::len)).sum();
    let mut builder = StringBuilder::with_capacity(capacity, bytes);
    for value in values {
        builder.append_option(value);
    }
    Arc::new(builder.finish())
}

pub fn longs(capacity: usize, values: impl Iterator<Item = i64>) -> ArrayRef {
    let mut builder = Int64Builder::with_capacity(capacity);
    builder.extend(values.map(Some));
    Arc::new(builder.finish())
}

fn timestamps(capacity: usize, values: impl Iterator<Item = i64>) -> ArrayRef {
    let mut builder = TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC");
    builder.extend(values.map(Some));
    Arc::new(builder.finish())
}

/// Encodes rows of one table as a batch of `schema` (the writer's schema, which names the
/// list element as the Delta log does). Rows of other tables are a bug and are skipped.
pub fn encode(
    table: Table,
    rows: &[TableRow],
    schema: &SchemaRef,
) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let columns: Vec<ArrayRef> = match table {
        Table::Pin => {
            let pins: Vec<&PinRow> = rows
                .iter()
                .filter_map(|row| match row {
                    TableRow::Clean(Row::Pin(pin)) => Some(&**pin),
                    _ => None,
                })
                .collect();
            let s = |column| strings(n, pins.iter().map(move |p| p.text(column)));
            vec![
                longs(n, pins.iter().map(|p| p.ind)),
                s(PinText::UniqueId),
                s(PinText::Title),
                s(PinText::Description),
                longs(n, pins.iter().map(|p| p.follower_count)),
                s(PinText::PosterName),
                s(PinText::TagList),
                s(PinText::IsImageOrVideo),
                s(PinText::ImageSrc),
                s(PinText::SaveLocation),
                s(PinText::Category),
            ]
        }
        Table::Geo => {
            let geos: Vec<&GeoRow> = rows
                .iter()
                .filter_map(|row| match row {
                    TableRow::Clean(Row::Geo(geo)) => Some(geo),
                    _ => None,
                })
                .collect();
            let element = match schema.field_with_name("coordinates")?.data_type() {
                DataType::List(element) => element.clone(),
                other => {
                    return Err(ArrowError::SchemaError(format!(
                        "coordinates must be a list, the table has {other}"
                    )));
                }
            };
            let mut coordinates =
                ListBuilder::with_capacity(Float64Builder::with_capacity(2 * n), n)
                    .with_field(element);
            for geo in &geos {
                coordinates.values().append_value(geo.coordinates[0].0);
                coordinates.values().append_value(geo.coordinates[1].0);
                coordinates.append(true);
            }
            vec![
                longs(n, geos.iter().map(|g| g.ind)),
                strings(n, geos.iter().map(|g| g.country.as_deref())),
                Arc::new(coordinates.finish()),
                timestamps(n, geos.iter().map(|g| g.timestamp)),
            ]
        }
        Table::User => {
            let users: Vec<&UserRow> = rows
                .iter()
                .filter_map(|row| match row {
                    TableRow::Clean(Row::User(user)) => Some(user),
                    _ => None,
                })
                .collect();
            let mut age = Int32Builder::with_capacity(n);
            age.extend(users.iter().map(|u| Some(u.age)));
            vec![
                longs(n, users.iter().map(|u| u.ind)),
                strings(n, users.iter().map(|u| Some(u.user_name.as_str()))),
                Arc::new(age.finish()),
                timestamps(n, users.iter().map(|u| u.date_joined)),
            ]
        }
        Table::Quarantine => {
            let bad: Vec<&QuarantineRow> = rows
                .iter()
                .filter_map(|row| match row {
                    TableRow::Quarantine(q) => Some(&**q),
                    _ => None,
                })
                .collect();
            vec![
                strings(n, bad.iter().map(|q| q.stream.map(Stream::name))),
                strings(n, bad.iter().map(|q| Some(q.source.as_str()))),
                timestamps(n, bad.iter().map(|q| q.received_at)),
                strings(n, bad.iter().map(|q| Some(q.raw.as_str()))),
                strings(n, bad.iter().map(|q| Some(q.reason.as_str()))),
            ]
        }
    };
    RecordBatch::try_new(schema.clone(), columns)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ArrowError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ArrowError::SchemaError(format!("column `{name}` is missing")))
}

fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, ArrowError> {
    column(batch, name)?
        .as_string_opt::<i32>()
        .ok_or_else(|| ArrowError::SchemaError(format!("`{name}` is not a string column")))
}

fn required<T>(value: Option<T>, name: &str) -> Result<T, ArrowError> {
    value.ok_or_else(|| {
        ArrowError::InvalidArgumentError(format!("null in required column `{name}`"))
    })
}

/// Value `i` of `array`, `None` when null.
fn text_at(array: &StringArray, i: usize) -> Option<&str> {
    (!array.is_null(i)).then(|| array.value(i))
}

/// Value `i` of `array`, a column that holds no null.
fn required_text_at<'a>(
    array: &'a StringArray,
    i: usize,
    name: &str,
) -> Result<&'a str, ArrowError> {
    required(text_at(array, i), name)
}

/// Sets `slot` to value `i` of `array` (`None` when null), reusing its buffer.
fn set_text(slot: &mut Option<String>, array: &StringArray, i: usize) {
    match text_at(array, i) {
        None => *slot = None,
        Some(value) => {
            let text = slot.get_or_insert_with(String::new);
            text.clear();
            text.push_str(value);
        }
    }
}

/// Sets `slot` to value `i` of `array`, a column that holds no null, reusing its buffer.
fn set_required(
    slot: &mut String,
    array: &StringArray,
    i: usize,
    name: &str,
) -> Result<(), ArrowError> {
    let value = required_text_at(array, i, name)?;
    slot.clear();
    slot.push_str(value);
    Ok(())
}

/// Hands each row of a batch read back from a table to `each`, in order (for rebuilding state
/// at start). The rows are built in one row whose strings are reused, so `each` copies what
/// it keeps: a read-back keeps a few fields of each row, and making every string of every row
/// (then dropping most) took 8% of a restart's CPU samples.
pub fn decode(
    table: Table,
    batch: &RecordBatch,
    mut each: impl FnMut(&TableRow),
) -> Result<(), ArrowError> {
    let long = |name: &str| -> Result<&[i64], ArrowError> {
        let array = column(batch, name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| ArrowError::SchemaError(format!("`{name}` is not a long")))?;
        Ok(array.values())
    };
    let micros = |name: &str| -> Result<&[i64], ArrowError> {
        let array = column(batch, name)?
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| ArrowError::SchemaError(format!("`{name}` is not a timestamp")))?;
        Ok(array.values())
    };
    match table {
        Table::Pin => {
            let (ind, follower_count) = (long("ind")?, long("follower_count")?);
            let texts: Vec<&StringArray> = PinText::ALL
                .into_iter()
                .map(|column| string_column(batch, column.name()))
                .collect::<Result<_, _>>()?;
            let mut row = TableRow::from(PinRow::new(0, 0, [None; PinText::COUNT]));
            for i in 0..batch.num_rows() {
                let TableRow::Clean(Row::Pin(pin)) = &mut row else {
                    unreachable!("made a pin row above");
                };
                let unique_id = PinText::UniqueId;
                required_text_at(texts[unique_id as usize], i, unique_id.name())?;
                pin.ind = ind[i];
                pin.follower_count = follower_count[i];
                pin.set_texts(std::array::from_fn(|column| text_at(texts[column], i)));
                each(&row);
            }
        }
        Table::Geo => {
            let (ind, time) = (long("ind")?, micros("timestamp")?);
            let country = string_column(batch, "country")?;
            let coordinates = column(batch, "coordinates")?
                .as_list_opt::<i32>()
                .ok_or_else(|| ArrowError::SchemaError("`coordinates` is not a list".into()))?;
            let mut row = TableRow::from(GeoRow {
                ind: 0,
                country: None,
                coordinates: [Degrees(0.0); 2],
                timestamp: 0,
            });
            for i in 0..batch.num_rows() {
                let pair = coordinates.value(i);
                let pair = pair.as_primitive_opt::<Float64Type>().ok_or_else(|| {
                    ArrowError::SchemaError("`coordinates` is not doubles".into())
                })?;
                if pair.len() != 2 {
                    return Err(ArrowError::InvalidArgumentError(format!(
                        "coordinates of ind {} has {} values",
                        ind[i],
                        pair.len()
                    )));
                }
                let TableRow::Clean(Row::Geo(geo)) = &mut row else {
                    unreachable!("made a geo row above");
                };
                geo.ind = ind[i];
                set_text(&mut geo.country, country, i);
                geo.coordinates = [Degrees(pair.value(0)), Degrees(pair.value(1))];
                geo.timestamp = time[i];
                each(&row);
            }
        }
        Table::User => {
            let (ind, joined) = (long("ind")?, micros("date_joined")?);
            let age = column(batch, "age")?
                .as_primitive_opt::<Int32Type>()
                .ok_or_else(|| ArrowError::SchemaError("`age` is not an int".into()))?;
            let user_name = string_column(batch, "user_name")?;
            let mut row = TableRow::from(UserRow {
                ind: 0,
                user_name: String::new(),
                age: 0,
                date_joined: 0,
            });
            for i in 0..batch.num_rows() {
                let TableRow::Clean(Row::User(user)) = &mut row else {
                    unreachable!("made a user row above");
                };
                user.ind = ind[i];
                set_required(&mut user.user_name, user_name, i, "user_name")?;
                user.age = age.value(i);
                user.date_joined = joined[i];
                each(&row);
            }
        }
        Table::Quarantine => {
            let received_at = micros("received_at")?;
            let (stream, source) = (
                string_column(batch, "stream")?,
                string_column(batch, "source")?,
            );
            let (raw, reason) = (
                string_column(batch, "raw")?,
                string_column(batch, "reason")?,
            );
            let mut row = TableRow::from(QuarantineRow {
                stream: None,
                source: String::new(),
                received_at: 0,
                raw: String::new(),
                reason: String::new(),
            });
            for (i, &received_at) in received_at.iter().enumerate() {
                let TableRow::Quarantine(quarantine) = &mut row else {
                    unreachable!("made a quarantine row above");
                };
                quarantine.stream = (!stream.is_null(i))
                    .then(|| Stream::from_name_token(stream.value(i)))
                    .flatten();
                set_required(&mut quarantine.source, source, i, "source")?;
                quarantine.received_at = received_at;
                set_required(&mut quarantine.raw, raw, i, "raw")?;
                set_required(&mut quarantine.reason, reason, i, "reason")?;
                each(&row);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clean::PinFields;

    /// Every codec a job may name parses to the Parquet codec it says and prints back the
    /// same way; anything else is refused with the codecs there are.
    #[test]
    fn codecs_parse_print_and_refuse() {
        for (text, compression, shown) in [
            ("snappy", Compression::SNAPPY, "snappy"),
            (" ZSTD ", Compression::ZSTD(ZstdLevel::default()), "zstd(1)"),
            (
                "zstd(3)",
                Compression::ZSTD(ZstdLevel::try_new(3).unwrap()),
                "zstd(3)",
            ),
            (
                "zstd( 22 )",
                Compression::ZSTD(ZstdLevel::try_new(22).unwrap()),
                "zstd(22)",
            ),
            ("gzip", Compression::GZIP(GzipLevel::default()), "gzip(6)"),
            (
                "gzip(9)",
                Compression::GZIP(GzipLevel::try_new(9).unwrap()),
                "gzip(9)",
            ),
            ("lz4", Compression::LZ4_RAW, "lz4"),
            ("lz4_raw", Compression::LZ4_RAW, "lz4"),
            ("none", Compression::UNCOMPRESSED, "uncompressed"),
            ("uncompressed", Compression::UNCOMPRESSED, "uncompressed"),
        ] {
            let codec: Codec = text.parse().unwrap();
            assert_eq!(codec.0, compression, "{text}");
            assert_eq!(codec.to_string(), shown, "{text}");
            assert_eq!(shown.parse::<Codec>(), Ok(codec), "{shown}");
        }
        for (text, needle) in [
            ("lzo", "unknown codec"),
            ("brotli(4)", "unknown codec"),
            ("", "unknown codec"),
            ("zstd(0)", "zstd levels are 1 to 22"),
            ("zstd(23)", "zstd levels are 1 to 22"),
            ("zstd(-1)", "a level is a number"),
            ("zstd(", "a level is a number"),
            ("zstd()", "a level is a number"),
            ("gzip(10)", "gzip levels are 0 to 9"),
            ("snappy(2)", "snappy takes no level"),
        ] {
            let error = text.parse::<Codec>().unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    /// The codec reaches every column of every table's files, the aggregates' too.
    #[test]
    fn the_codec_is_every_columns() {
        let zstd: Codec = "zstd(2)".parse().unwrap();
        for table in Table::ALL {
            let properties = writer_properties(table, zstd);
            for column in ["ind", "category", "reason"] {
                assert_eq!(
                    properties.compression(&ColumnPath::from(column)),
                    zstd.0,
                    "{table}"
                );
            }
        }
        let aggregates = aggregate_writer_properties(zstd);
        assert_eq!(aggregates.compression(&ColumnPath::from("posts")), zstd.0);
    }

    fn samples() -> Vec<(Table, Vec<TableRow>)> {
        let pin = PinFields {
            ind: 7,
            unique_id: "55abcd28-bda1-4453-bbcd-1427fb3aa49b".into(),
            title: Some("A title".into()),
            description: None,
            follower_count: 2_000_000,
            poster_name: Some("Someone".into()),
            tag_list: None,
            is_image_or_video: Some("image".into()),
            image_src: None,
            save_location: Some("/data/art".into()),
            category: Some("art".into()),
        };
        let geo = GeoRow {
            ind: 7,
            country: None,
            coordinates: [Degrees(-88.8298), Degrees(-170.188)],
            timestamp: 1_657_153_121_000_000,
        };
        let user = UserRow {
            ind: 7,
            user_name: "Adam Acosta".into(),
            age: 20,
            date_joined: 1,
        };
        let bad = QuarantineRow {
            stream: None,
            source: "file:x.pin@3".into(),
            received_at: 5,
            raw: "base64:/wA=".into(),
            reason: "not valid JSON".into(),
        };
        // Second rows with other nulls and lengths: the decoder reuses one row's strings.
        let pin_2 = PinFields {
            title: None,
            description: Some("A description longer than the first row's title".into()),
            category: None,
            ..pin.clone()
        };
        let geo_2 = GeoRow {
            country: Some("Fiji".into()),
            ..geo.clone()
        };
        let user_2 = UserRow {
            user_name: "Bo".into(),
            ..user.clone()
        };
        let bad_2 = QuarantineRow {
            stream: Some(Stream::Pin),
            source: "kafka:a.pin/0@12".into(),
            raw: "{}".into(),
            ..bad.clone()
        };
        vec![
            (
                Table::Pin,
                vec![PinRow::from(pin).into(), PinRow::from(pin_2).into()],
            ),
            (Table::Geo, vec![geo.into(), geo_2.into()]),
            (Table::User, vec![user.into(), user_2.into()]),
            (Table::Quarantine, vec![bad.into(), bad_2.into()]),
        ]
    }

    #[test]
    fn rows_survive_encode_then_decode() {
        for (table, rows) in samples() {
            let schema = arrow_schema(table);
            let batch = encode(table, &rows, &schema).unwrap();
            assert_eq!(batch.num_rows(), rows.len());
            let mut decoded = Vec::new();
            decode(table, &batch, |row| decoded.push(row.clone())).unwrap();
            assert_eq!(decoded, rows, "{table}");
        }
    }

    #[test]
    fn timestamps_carry_utc() {
        for table in [Table::Geo, Table::User, Table::Quarantine] {
            let schema = arrow_schema(table);
            assert!(
                schema
                    .fields()
                    .iter()
                    .any(|f| f.data_type() == &timestamp()),
                "{table}"
            );
        }
    }
}

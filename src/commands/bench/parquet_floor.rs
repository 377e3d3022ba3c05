//! The file bench's second floor: serde_json's typed parse (the floor of
//! [`crate::clean::floor`]), then the parsed records written as Parquet the way the sink
//! writes the tables: Arrow batches of [`CHUNK_ROWS`] rows, the tables' settings
//! ([`writer_properties`] with [`CODEC`], the default, as the bench's runs use it;
//! dictionaries only where values repeat), one file per stream and thread, into memory (no
//! disk, no Delta log).
//!
//! Any pipeline that lands these records as such tables does at least this much; the
//! pipeline's share of this floor is what the engine's own work (cleaning, deduplication,
//! analytics, commits) leaves of it, where the parse-only floor also charges the format.

use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, Float64Array};
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::parquet::arrow::ArrowWriter;

use super::Error;
use crate::clean::floor::{GeoRecord, PinRecord, Record, UserRecord, parse_record};
use crate::sink::delta::CHUNK_ROWS;
use crate::sink::schema::{Codec, longs, strings, writer_properties};
use crate::stream::Stream;
use crate::table::Table;

/// The codec the floor writes with: the default, as the bench's runs use it.
pub(super) const CODEC: Codec = Codec::DEFAULT;

/// Parses the lines and writes their records as Parquet (one thread's share of the floor);
/// returns the records parsed and the Parquet bytes written.
pub(super) fn parse_and_write<'a>(
    lines: impl Iterator<Item = &'a (Stream, &'a [u8])>,
) -> Result<(usize, usize), Error> {
    let mut pins = Chunks::new(Table::Pin, pin_batch)?;
    let mut geos = Chunks::new(Table::Geo, geo_batch)?;
    let mut users = Chunks::new(Table::User, user_batch)?;
    let mut parsed = 0;
    for (stream, line) in lines {
        let Some(record) = parse_record(*stream, line) else {
            continue;
        };
        parsed += 1;
        match record {
            Record::Pin(pin) => pins.push(pin)?,
            Record::Geo(geo) => geos.push(geo)?,
            Record::User(user) => users.push(user)?,
        }
    }
    let bytes = pins.finish()? + geos.finish()? + users.finish()?;
    Ok((parsed, bytes))
}

/// One table's file being written: records held until a chunk is full, then encoded.
struct Chunks<R> {
    table: Table,
    rows: Vec<R>,
    batch: fn(&[R]) -> Result<RecordBatch, String>,
    writer: ArrowWriter<Vec<u8>>,
}

impl<R> Chunks<R> {
    fn new(table: Table, batch: fn(&[R]) -> Result<RecordBatch, String>) -> Result<Self, Error> {
        let schema: SchemaRef = batch(&[]).map_err(|e| failed(table, e))?.schema();
        let properties = writer_properties(table, CODEC);
        let writer = ArrowWriter::try_new(Vec::new(), schema, Some(properties))
            .map_err(|e| failed(table, e))?;
        Ok(Chunks {
            table,
            rows: Vec::with_capacity(CHUNK_ROWS),
            batch,
            writer,
        })
    }

    fn push(&mut self, row: R) -> Result<(), Error> {
        self.rows.push(row);
        if self.rows.len() >= CHUNK_ROWS {
            self.write()?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<(), Error> {
        let batch = (self.batch)(&self.rows).map_err(|e| failed(self.table, e))?;
        self.writer
            .write(&batch)
            .map_err(|e| failed(self.table, e))?;
        self.rows.clear();
        Ok(())
    }

    /// Writes what is held and closes the file; returns its size.
    fn finish(mut self) -> Result<usize, Error> {
        if !self.rows.is_empty() {
            self.write()?;
        }
        let table = self.table;
        let file = self.writer.into_inner().map_err(|e| failed(table, e))?;
        Ok(file.len())
    }
}

fn failed(table: Table, error: impl std::fmt::Display) -> Error {
    Error::BenchCheck(format!("the Parquet floor: writing {table}: {error}"))
}

fn text<'a, R: 'a>(rows: &'a [R], field: fn(&R) -> &str) -> ArrayRef {
    strings(rows.len(), rows.iter().map(move |row| Some(field(row))))
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch, String> {
    RecordBatch::try_from_iter(columns).map_err(|e| e.to_string())
}

fn pin_batch(rows: &[PinRecord]) -> Result<RecordBatch, String> {
    batch(vec![
        ("index", longs(rows.len(), rows.iter().map(|r| r.index))),
        ("unique_id", text(rows, |r| &r.unique_id)),
        ("title", text(rows, |r| &r.title)),
        ("description", text(rows, |r| &r.description)),
        ("poster_name", text(rows, |r| &r.poster_name)),
        ("follower_count", text(rows, |r| &r.follower_count)),
        ("tag_list", text(rows, |r| &r.tag_list)),
        ("is_image_or_video", text(rows, |r| &r.is_image_or_video)),
        ("image_src", text(rows, |r| &r.image_src)),
        (
            "downloaded",
            longs(rows.len(), rows.iter().map(|r| r.downloaded)),
        ),
        ("save_location", text(rows, |r| &r.save_location)),
        ("category", text(rows, |r| &r.category)),
    ])
}

fn geo_batch(rows: &[GeoRecord]) -> Result<RecordBatch, String> {
    let floats = |field: fn(&GeoRecord) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(field)))
    };
    batch(vec![
        ("ind", longs(rows.len(), rows.iter().map(|r| r.ind))),
        ("timestamp", text(rows, |r| &r.timestamp)),
        ("latitude", floats(|r| r.latitude)),
        ("longitude", floats(|r| r.longitude)),
        ("country", text(rows, |r| &r.country)),
    ])
}

fn user_batch(rows: &[UserRecord]) -> Result<RecordBatch, String> {
    batch(vec![
        ("ind", longs(rows.len(), rows.iter().map(|r| r.ind))),
        ("first_name", text(rows, |r| &r.first_name)),
        ("last_name", text(rows, |r| &r.last_name)),
        ("age", longs(rows.len(), rows.iter().map(|r| r.age))),
        ("date_joined", text(rows, |r| &r.date_joined)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor writes real Parquet: the files read back with every record parsed.
    #[test]
    fn writes_every_parsed_record_as_parquet() {
        use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
        let pin = br#"{"index": 7, "unique_id": "u", "title": "t", "description": "d", "poster_name": "p", "follower_count": "5k", "tag_list": "a,b", "is_image_or_video": "image", "image_src": "s", "downloaded": 1, "save_location": "l", "category": "c"}"#;
        let geo = br#"{"ind": 7, "timestamp": "2020-01-01 00:00:00", "latitude": 1.5, "longitude": -2.5, "country": "X"}"#;
        let lines: Vec<(Stream, &[u8])> = std::iter::repeat_n((Stream::Pin, &pin[..]), 9000)
            .chain([(Stream::Geo, &geo[..]), (Stream::User, &b"{not json"[..])])
            .collect();
        let (parsed, bytes) = parse_and_write(lines.iter()).unwrap();
        assert_eq!(parsed, 9001);
        assert!(bytes > 0);

        let mut pins = Chunks::new(Table::Pin, pin_batch).unwrap();
        for _ in 0..9000 {
            pins.push(serde_json::from_slice(pin).unwrap()).unwrap();
        }
        pins.write().unwrap();
        let file = pins.writer.into_inner().unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(file)).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 9000);
        let columns = reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .num_columns();
        assert_eq!(columns, 12);
    }
}

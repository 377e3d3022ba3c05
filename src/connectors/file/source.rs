//! The file source (SPEC §5): every file under a directory whose name or parent folders carry
//! the token `pin`, `geo` or `user`, one JSON object per line. Covers plain JSON Lines
//! (`pin.jsonl`) and the Kafka Connect S3 sink layout
//! (`topics/<topic>/partition=<p>/<topic>+<p>+<offset>.json`).
//!
//! Each file is a partition (`file:<path relative to the directory>`); its position is the
//! number of lines consumed, its offsets are 0-based line indices. Files are spread over the
//! workers by their sorted order, so every worker count reads the same lines.
//!
//! Once a file has [`CURSOR_MIN_LINES`] lines consumed, the byte offset where its next line
//! starts is committed with its position, as the position's cursor: a restart seeks there
//! instead of counting the lines again. A file is expected only to grow; when the byte before
//! the stored offset is no longer a line's end, the lines are counted as before.
//!
//! **Following** ([`FileSource::following`], a run without `--until-done`): once every file
//! is read, the directory is listed again every `interval`, and files not seen before are
//! read, each by the worker a stable hash of its id names (the sorted order of a growing
//! listing would move files between workers). A new file is read only once the driver has
//! looked up its position in the tables ([`Source::take_new_partitions`]): a file an earlier
//! run read (part of) that is moved back in, or is listed again only now, goes on from there
//! instead of being read again from its start. A file that grows after it was read is not
//! read again.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::connectors::lines::Lines;
use crate::connectors::{
    Cursor, CursorLookup, Cursors, PartitionId, PollStatus, Position, Positions, RawRecord, Source,
    SourceError,
};
use crate::stream::Stream;

/// Lines consumed from a file from which its byte offset is committed as the cursor of its
/// position. Below it a restart counts the lines (100,000 of the longest records, pins, are
/// 77 MB: 12 ms from the page cache), and the file adds nothing to the commits: each commit
/// names the cursor of every file its process read, so a directory of many small files (a
/// Kafka Connect archive writes one per flush) would make every commit larger.
const CURSOR_MIN_LINES: i64 = 100_000;

/// Commits per table read back at start, newest first, looking for the files' cursors. Each
/// commit names the cursor of every file its process read, so the newest few hold them all;
/// this leaves room for the other processes' commits in a cluster and for compaction's. A
/// lake written before files had cursors holds none, and every start on it reads this many.
const CURSOR_SEARCH_COMMITS: u64 = 16;

/// One file to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePartition {
    pub path: PathBuf,
    pub id: PartitionId,
    pub stream: Stream,
}

/// Lists the files of `dir` that belong to a stream, sorted by relative path. Files with no
/// stream token are left out (a `README`, a `_SUCCESS` marker).
pub fn list(dir: &Path) -> Result<Vec<FilePartition>, SourceError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| SourceError::Io { path, source }
    };
    let mut pending = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let entry = entry.map_err(io(&folder))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            match Stream::from_name_token(&relative) {
                Some(stream) => files.push(FilePartition {
                    id: format!("file:{relative}").into(),
                    path,
                    stream,
                }),
                None => {
                    tracing::debug!(file = %relative, "no pin/geo/user token in the path; skipped")
                }
            }
        }
    }
    files.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(files)
}

/// Reads this worker's share of the files, one after the other.
pub struct FileSource {
    dir: PathBuf,
    worker: usize,
    peers: usize,
    /// Every file listed so far (any worker's), by id.
    known: HashSet<PartitionId>,
    /// When following: the interval and the last listing.
    follow: Option<(Duration, Instant)>,
    files: Vec<FilePartition>,
    /// Files found while following, not yet handed to the driver; then those handed out and
    /// waiting for their positions ([`Source::seek_new`]).
    found: Vec<FilePartition>,
    asked: Vec<FilePartition>,
    /// How far each file is read, aligned with `files`.
    progress: Vec<Progress>,
    /// [`CURSOR_MIN_LINES`] (lower in tests).
    cursor_min_lines: i64,
    /// Index into `files` of the file being read, and its lines.
    current: usize,
    reader: Option<Lines<File>>,
}

impl FileSource {
    pub fn new(dir: &Path, worker: usize, peers: usize) -> Result<Self, SourceError> {
        if !dir.is_dir() {
            return Err(SourceError::Config(format!(
                "file source: {} is not a directory",
                dir.display()
            )));
        }
        let listed = list(dir)?;
        let known = listed.iter().map(|file| file.id.clone()).collect();
        let files: Vec<_> = listed
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % peers == worker)
            .map(|(_, file)| file)
            .collect();
        Ok(FileSource {
            dir: dir.to_path_buf(),
            worker,
            peers,
            known,
            follow: None,
            found: Vec::new(),
            asked: Vec::new(),
            progress: vec![Progress::at(Position::START, None); files.len()],
            cursor_min_lines: CURSOR_MIN_LINES,
            files,
            current: 0,
            reader: None,
        })
    }

    /// Keeps listing the directory every `interval` once everything is read.
    pub fn following(mut self, interval: Duration) -> Self {
        self.follow = Some((interval, Instant::now()));
        self
    }

    /// Lists the directory again when the interval has passed; adds this worker's new files.
    fn list_again(&mut self) {
        let Some((interval, listed_at)) = &mut self.follow else {
            return;
        };
        if listed_at.elapsed() < *interval {
            return;
        }
        *listed_at = Instant::now();
        let listed = match list(&self.dir) {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(%error, "file source: listing again later");
                return;
            }
        };
        for file in listed {
            if !self.known.insert(file.id.clone())
                || crate::connectors::kafka::owner(&file.id, self.peers) != self.worker
            {
                continue;
            }
            tracing::debug!(file = %file.id, "new file");
            self.found.push(file);
        }
    }

    /// Opens file `current` at its first line not consumed: at the byte offset stored with its
    /// position when there is one, otherwise by counting the lines consumed from its start.
    fn open_current(&mut self) -> Result<(), SourceError> {
        let file = &self.files[self.current];
        let io = |source| SourceError::Io {
            path: file.path.display().to_string(),
            source,
        };
        let mut handle = File::open(&file.path).map_err(&io)?;
        let progress = &mut self.progress[self.current];
        let lines = u64::try_from(progress.lines.value()).unwrap_or(0);
        let start = &mut progress.start;
        let reader = match *start {
            _ if lines == 0 => {
                *start = Some(0);
                Lines::new(handle)
            }
            Some(at) if at > 0 && seek_after_line_end(&mut handle, at).map_err(&io)? => {
                tracing::debug!(file = %file.id, lines, byte = at, "file resumed at the byte offset stored with its position");
                Lines::new(handle)
            }
            stored => {
                if stored.is_some() {
                    tracing::warn!(file = %file.id, lines, "the file changed before the byte offset stored with its position: counting its lines instead");
                }
                let mut reader = Lines::new(handle);
                *start = Some(reader.skip(lines).map_err(&io)?);
                reader
            }
        };
        self.reader = Some(reader);
        Ok(())
    }
}

/// Moves `file` to `at` when a line ends right before it (the byte there is `\n`); false
/// otherwise (the file is shorter, or was written again), with `file` back at its start.
fn seek_after_line_end(file: &mut File, at: u64) -> io::Result<bool> {
    file.seek(SeekFrom::Start(at - 1))?;
    let mut last = [0];
    let ends = match file.read_exact(&mut last) {
        Ok(()) => last[0] == b'\n',
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => false,
        Err(error) => return Err(error),
    };
    if !ends {
        file.seek(SeekFrom::Start(0))?;
    }
    Ok(ends)
}

/// How far one file is read.
#[derive(Clone, Debug)]
struct Progress {
    /// The lines consumed: the file's position.
    lines: Position,
    /// Where the next line starts, when known: from reading the file, or the cursor stored
    /// with its position.
    start: Option<u64>,
}

impl Progress {
    /// At `lines`, starting where `cursor` says when it is that very position's; otherwise at
    /// byte 0 before any line, and not known once lines were consumed (they are counted).
    fn at(lines: Position, cursor: Option<&Cursor>) -> Progress {
        let start = match cursor {
            Some(cursor) if cursor.position == lines => cursor.cursor.parse().ok(),
            _ => (lines == Position::START).then_some(0),
        };
        Progress { lines, start }
    }
}

impl Source for FileSource {
    fn partitions(&self) -> Vec<PartitionId> {
        self.files.iter().map(|file| file.id.clone()).collect()
    }

    fn seek(&mut self, from: &Positions) -> Result<(), SourceError> {
        self.seek_exact(from, &Cursors::new())
    }

    fn cursors_to_look_up(&self, from: &Positions) -> CursorLookup {
        let positions = from
            .iter()
            .filter(|(_, position)| position.value() >= self.cursor_min_lines)
            .map(|(partition, &position)| (partition.clone(), position))
            .collect();
        CursorLookup {
            positions,
            commits: CURSOR_SEARCH_COMMITS,
        }
    }

    fn seek_exact(&mut self, from: &Positions, cursors: &Cursors) -> Result<(), SourceError> {
        for (file, progress) in self.files.iter().zip(&mut self.progress) {
            let lines = from.get(&file.id).copied().unwrap_or(Position::START);
            *progress = Progress::at(lines, cursors.get(&file.id));
        }
        self.current = 0;
        self.reader = None;
        Ok(())
    }

    fn take_new_partitions(&mut self) -> Vec<PartitionId> {
        let ids = self.found.iter().map(|file| file.id.clone()).collect();
        self.asked.append(&mut self.found);
        ids
    }

    fn seek_new(&mut self, from: &Positions) -> Result<(), SourceError> {
        for file in self.asked.drain(..) {
            let lines = from.get(&file.id).copied().unwrap_or(Position::START);
            self.progress.push(Progress::at(lines, None));
            self.files.push(file);
        }
        Ok(())
    }

    fn poll(&mut self, max: usize, out: &mut Vec<RawRecord>) -> Result<PollStatus, SourceError> {
        let arrival = crate::now_micros();
        let mut taken = 0;
        while taken < max {
            if self.current >= self.files.len() {
                if self.follow.is_none() {
                    return Ok(PollStatus::Exhausted);
                }
                if taken > 0 {
                    return Ok(PollStatus::Ready);
                }
                self.list_again();
                return Ok(PollStatus::Idle);
            }
            if self.reader.is_none() {
                self.open_current()?;
            }
            let file = &self.files[self.current];
            let reader = self.reader.as_mut().expect("opened above");
            let line = reader.next_line().map_err(|source| SourceError::Io {
                path: file.path.display().to_string(),
                source,
            })?;
            let Some(line) = line else {
                self.reader = None;
                self.current += 1;
                continue;
            };
            let progress = &mut self.progress[self.current];
            let offset = progress.lines.next_offset();
            progress.lines = offset.next();
            if let Some(start) = &mut progress.start {
                *start += line.len() as u64;
            }
            if let Some(record) = RawRecord::from_line(line, file.stream, &file.id, offset, arrival)
            {
                out.push(record);
                taken += 1;
            }
        }
        Ok(PollStatus::Ready)
    }

    fn positions(&self) -> Positions {
        self.files
            .iter()
            .zip(&self.progress)
            .map(|(file, progress)| (file.id.clone(), progress.lines))
            .collect()
    }

    fn cursors(&self) -> Cursors {
        self.files
            .iter()
            .zip(&self.progress)
            .filter(|(_, progress)| progress.lines.value() >= self.cursor_min_lines)
            .filter_map(|(file, progress)| {
                let cursor = Cursor {
                    position: progress.lines,
                    cursor: progress.start?.to_string(),
                };
                Some((file.id.clone(), cursor))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, relative: &str, lines: &str) {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, lines).unwrap();
    }

    fn drain(source: &mut FileSource, max: usize) -> Vec<(String, i64, String)> {
        let mut out = Vec::new();
        while source.poll(max, &mut out).unwrap() != PollStatus::Exhausted {}
        crate::connectors::testing::described(out)
    }

    #[test]
    fn lists_jsonl_and_kafka_connect_layouts() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "pin.jsonl", "{}\n");
        write(
            dir.path(),
            "topics/abc.geo/partition=0/abc.geo+0+0000000042.json",
            "{}\n",
        );
        write(dir.path(), "README.md", "no stream here\n");
        let files = list(dir.path()).unwrap();
        let found: Vec<_> = files.iter().map(|f| (f.id.to_string(), f.stream)).collect();
        assert_eq!(
            found,
            vec![
                ("file:pin.jsonl".to_string(), Stream::Pin),
                (
                    "file:topics/abc.geo/partition=0/abc.geo+0+0000000042.json".to_string(),
                    Stream::Geo
                ),
            ]
        );
    }

    #[test]
    fn reads_lines_skips_blank_ones_and_resumes_after_positions() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "pin.jsonl", "a\r\n\nb\nc");
        write(dir.path(), "user.jsonl", "x\ny\n");
        let mut source = FileSource::new(dir.path(), 0, 1).unwrap();
        let all = drain(&mut source, 2);
        let expected = vec![
            ("file:pin.jsonl".to_string(), 0, "a".to_string()),
            ("file:pin.jsonl".to_string(), 2, "b".to_string()),
            ("file:pin.jsonl".to_string(), 3, "c".to_string()),
            ("file:user.jsonl".to_string(), 0, "x".to_string()),
            ("file:user.jsonl".to_string(), 1, "y".to_string()),
        ];
        assert_eq!(all, expected);
        let positions = source.positions();
        assert_eq!(positions.get("file:pin.jsonl"), Some(&Position::new(4)));
        assert_eq!(positions.get("file:user.jsonl"), Some(&Position::new(2)));

        let mut resumed = FileSource::new(dir.path(), 0, 1).unwrap();
        let mut from = Positions::new();
        from.insert("file:pin.jsonl".into(), Position::new(3));
        from.insert("file:user.jsonl".into(), Position::new(1));
        resumed.seek(&from).unwrap();
        assert_eq!(
            drain(&mut resumed, 10),
            vec![expected[2].clone(), expected[4].clone()]
        );
    }

    /// Positions and cursors as a restart reads them back: `(partition, position, cursor)`.
    fn stored(entries: &[(&str, i64, Option<&str>)]) -> (Positions, Cursors) {
        let mut positions = Positions::new();
        let mut cursors = Cursors::new();
        for &(partition, position, cursor) in entries {
            positions.insert(partition.into(), Position::new(position));
            if let Some(cursor) = cursor {
                let cursor = Cursor {
                    position: Position::new(position),
                    cursor: cursor.into(),
                };
                cursors.insert(partition.into(), cursor);
            }
        }
        (positions, cursors)
    }

    #[test]
    fn the_cursor_of_a_file_position_is_where_its_next_line_starts() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "pin.jsonl", "a\r\n\nb\nc");
        write(dir.path(), "user.jsonl", "x\ny\n");
        let mut source = FileSource::new(dir.path(), 0, 1).unwrap();
        source.cursor_min_lines = 3;
        let mut out = Vec::new();
        source.poll(1, &mut out).unwrap();
        assert!(source.cursors().is_empty(), "1 line is below the minimum");
        drain(&mut source, 10);
        // 4 lines of pin.jsonl (7 bytes); user.jsonl has only 2 lines.
        let cursor = Cursor {
            position: Position::new(4),
            cursor: "7".into(),
        };
        assert_eq!(
            source.cursors(),
            Cursors::from([("file:pin.jsonl".into(), cursor)])
        );
        let (positions, _) = stored(&[("file:pin.jsonl", 4, None), ("file:user.jsonl", 2, None)]);
        assert_eq!(
            source.cursors_to_look_up(&positions).positions,
            Positions::from([("file:pin.jsonl".into(), Position::new(4))])
        );

        // Resumed from the tables: the cursor is where reading goes on.
        let mut resumed = FileSource::new(dir.path(), 0, 1).unwrap();
        resumed.cursor_min_lines = 3;
        let (positions, cursors) = stored(&[("file:pin.jsonl", 2, Some("4"))]);
        resumed.seek_exact(&positions, &cursors).unwrap();
        let read = drain(&mut resumed, 10);
        assert_eq!(
            read[..2],
            [
                ("file:pin.jsonl".into(), 2, "b".into()),
                ("file:pin.jsonl".into(), 3, "c".into())
            ]
        );
        assert_eq!(resumed.cursors()["file:pin.jsonl"].cursor, "7");
    }

    /// The stored offset is used as it is (not checked by counting): a cursor naming the start
    /// of another line than the position's is followed, the lines numbered on from the
    /// position.
    #[test]
    fn a_restart_seeks_to_the_stored_offset_instead_of_counting() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "pin.jsonl", "a\nbb\nccc\nd\n");
        let mut source = FileSource::new(dir.path(), 0, 1).unwrap();
        let (positions, cursors) = stored(&[("file:pin.jsonl", 1, Some("5"))]);
        source.seek_exact(&positions, &cursors).unwrap();
        assert_eq!(
            drain(&mut source, 10),
            [
                ("file:pin.jsonl".into(), 1, "ccc".into()),
                ("file:pin.jsonl".into(), 2, "d".into())
            ]
        );
    }

    /// A cursor that is not right after a line's end (the file changed), lies past the end,
    /// or belongs to another position is not used: the lines are counted.
    #[test]
    fn an_unusable_cursor_falls_back_to_counting_lines() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "pin.jsonl", "a\nbb\nccc\nd\n");
        for cursor in ["3", "999", "0", "x"] {
            let mut source = FileSource::new(dir.path(), 0, 1).unwrap();
            let (positions, cursors) = stored(&[("file:pin.jsonl", 2, Some(cursor))]);
            source.seek_exact(&positions, &cursors).unwrap();
            assert_eq!(
                drain(&mut source, 10),
                [
                    ("file:pin.jsonl".into(), 2, "ccc".into()),
                    ("file:pin.jsonl".into(), 3, "d".into())
                ],
                "cursor {cursor}"
            );
        }
        let mut source = FileSource::new(dir.path(), 0, 1).unwrap();
        let (positions, _) = stored(&[("file:pin.jsonl", 2, None)]);
        let (_, other) = stored(&[("file:pin.jsonl", 1, Some("2"))]);
        source.seek_exact(&positions, &other).unwrap();
        assert_eq!(
            drain(&mut source, 10)[0],
            ("file:pin.jsonl".into(), 2, "ccc".into())
        );
    }

    #[test]
    fn following_reads_files_added_later_once() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "pin.jsonl", "a\n");
        let mut sources: Vec<_> = (0..2)
            .map(|w| {
                FileSource::new(dir.path(), w, 2)
                    .unwrap()
                    .following(Duration::from_millis(1))
            })
            .collect();
        let poll_all = |sources: &mut Vec<FileSource>| {
            let mut out = Vec::new();
            for source in sources.iter_mut() {
                for _ in 0..3 {
                    std::thread::sleep(Duration::from_millis(2));
                    // As the driver does: new files start where the tables say (nowhere).
                    source.take_new_partitions();
                    source.seek_new(&Positions::new()).unwrap();
                    assert_ne!(source.poll(10, &mut out).unwrap(), PollStatus::Exhausted);
                }
            }
            let mut read: Vec<_> = out
                .into_iter()
                .map(|r| (r.partition.to_string(), r.offset.value()))
                .collect();
            read.sort();
            read
        };
        assert_eq!(poll_all(&mut sources), vec![("file:pin.jsonl".into(), 0)]);
        write(
            dir.path(),
            "topics/a.geo/partition=0/a.geo+0+0000000000.json",
            "x\ny\n",
        );
        write(dir.path(), "user.jsonl", "u\n");
        assert_eq!(
            poll_all(&mut sources),
            vec![
                (
                    "file:topics/a.geo/partition=0/a.geo+0+0000000000.json".into(),
                    0
                ),
                (
                    "file:topics/a.geo/partition=0/a.geo+0+0000000000.json".into(),
                    1
                ),
                ("file:user.jsonl".into(), 0),
            ]
        );
        assert!(poll_all(&mut sources).is_empty());
    }

    #[test]
    fn a_file_first_listed_while_following_resumes_at_its_stored_position() {
        let dir = tempfile::tempdir().unwrap();
        let mut source = FileSource::new(dir.path(), 0, 1)
            .unwrap()
            .following(Duration::from_millis(1));
        source.seek(&Positions::new()).unwrap();
        // Read (in part) by an earlier run, moved back in after the start.
        write(dir.path(), "pin.jsonl", "a\nb\nc\n");
        std::thread::sleep(Duration::from_millis(2));
        crate::connectors::testing::resumes_new_partition_at(&mut source, "file:pin.jsonl", 2);
        let mut out = Vec::new();
        assert_eq!(source.poll(10, &mut out).unwrap(), PollStatus::Ready);
        let read: Vec<_> = out.iter().map(|r| r.offset.value()).collect();
        assert_eq!(read, vec![2]);
        assert_eq!(source.positions()["file:pin.jsonl"], Position::new(3));
    }

    #[test]
    fn workers_split_the_files_without_overlap() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["pin.jsonl", "geo.jsonl", "user.jsonl", "more/pin-2.jsonl"] {
            write(dir.path(), name, "1\n2\n");
        }
        let mut seen = Vec::new();
        for worker in 0..3 {
            let mut source = FileSource::new(dir.path(), worker, 3).unwrap();
            seen.extend(drain(&mut source, 1));
        }
        seen.sort();
        assert_eq!(seen.len(), 8);
        seen.dedup();
        assert_eq!(seen.len(), 8);
    }
}

//! `pinstream bench --soak`, shortened: a 40 s run at a low rate with a sample every 2 s.
//! What it proves: the command runs a real engine to the end, writes one CSV row per sample
//! with every column filled from the child (memory, metrics, the Delta logs), stops the
//! child, and prints a verdict with every criterion. Memory and freshness are not judged
//! here: 40 s of a debug build on a shared machine says nothing about them; checkpoints and
//! compaction (every 14 s here) are.

use crate::support::*;

#[test]
fn a_short_soak_writes_its_samples_and_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("soak.csv");
    let output = pinstream()
        .args(["bench", "--soak", "--minutes", "0.7", "--sample", "2s"])
        .args(["--rate", "500", "--universe", "100000", "--workers", "2"])
        .arg("--csv")
        .arg(&csv)
        .arg("--dir")
        .arg(dir.path().join("work"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Exit 0 on a pass, 1 on a failed criterion: either way, the verdict is printed.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}\n{stdout}\n{stderr}",
        output.status
    );
    let verdict = stdout
        .lines()
        .find_map(|line| line.strip_prefix("soak verdict: "))
        .unwrap_or_else(|| panic!("no verdict in\n{stdout}\n{stderr}"));
    assert_eq!(verdict == "PASS", output.status.success(), "{stdout}");
    for criterion in [
        "memory flat",
        "freshness p99 steady",
        "log checkpoints present",
        "small files compacted",
    ] {
        assert!(
            stdout
                .lines()
                .any(|line| line.contains(&format!(" {criterion}: "))),
            "no {criterion} in\n{stdout}"
        );
    }
    assert!(stdout.contains("PASS log checkpoints present"), "{stdout}");
    assert!(stdout.contains("PASS small files compacted"), "{stdout}");

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut expected = vec![
        "seconds",
        "rss_mib",
        "records_in",
        "rows_committed",
        "records_per_second",
        "freshness_p50_ms",
        "freshness_p99_ms",
        "commit_latency_p99_ms",
        "commit_latency_max_ms",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    for table in ["pin", "geo", "user", "quarantine"] {
        for figure in ["files", "bytes", "version", "checkpoints"] {
            expected.push(format!("{table}_{figure}"));
        }
    }
    assert_eq!(header, expected);
    let rows: Vec<Vec<&str>> = lines.map(|line| line.split(',').collect()).collect();
    assert_eq!(rows.len(), 21, "one row per 2 s of 42 s:\n{text}");
    let column = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let number = |row: &[&str], name: &str| -> f64 {
        row[column(name)]
            .parse()
            .unwrap_or_else(|_| panic!("{name} in {row:?}"))
    };
    let mut previous = 0.0;
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{row:?}");
        assert!(number(row, "seconds") > previous, "{row:?}");
        previous = number(row, "seconds");
        assert!(number(row, "rss_mib") > 1.0, "{row:?}");
    }
    let last = rows.last().unwrap();
    assert!(number(last, "records_in") > 5_000.0, "{last:?}");
    assert!(number(last, "rows_committed") > 0.0, "{last:?}");
    for figure in ["freshness_p99_ms", "commit_latency_max_ms"] {
        assert!(number(last, figure) > 0.0, "{figure}: {last:?}");
    }
    for table in ["pin", "geo", "user", "quarantine"] {
        assert!(
            number(last, &format!("{table}_version")) >= 10.0,
            "{last:?}"
        );
        assert!(
            number(last, &format!("{table}_checkpoints")) >= 1.0,
            "{last:?}"
        );
    }
}

//! The fuzzers' kept corpus (fuzz/corpus/<target>/), replayed on stable through the same target
//! bodies (`pinstream::fuzzing`): every input the fuzzers found worth keeping still holds every
//! invariant. A panic names the file.

use std::path::Path;

use pinstream::fuzzing::TARGETS;

fn fuzz_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz"))
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_target_has_its_body_and_a_corpus() {
    let mut targets: Vec<String> = names_in(&fuzz_dir().join("fuzz_targets"))
        .into_iter()
        .filter_map(|file| file.strip_suffix(".rs").map(str::to_owned))
        .collect();
    targets.sort();
    let mut bodies: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    bodies.sort();
    assert_eq!(
        targets, bodies,
        "fuzz/fuzz_targets and pinstream::fuzzing::TARGETS"
    );
    assert_eq!(names_in(&fuzz_dir().join("corpus")), bodies);
}

#[test]
fn the_kept_corpus_replays_through_every_target() {
    let started = std::time::Instant::now();
    let mut inputs = 0;
    for (name, body) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let files = names_in(&dir);
        assert!(files.len() >= 10, "{name}: {} inputs kept", files.len());
        for file in files {
            let path = dir.join(&file);
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| body(&data));
            assert!(
                result.is_ok(),
                "{name}: {} breaks an invariant ({:?})",
                path.display(),
                String::from_utf8_lossy(&data)
            );
            inputs += 1;
        }
    }
    eprintln!("{inputs} inputs replayed in {:?}", started.elapsed());
}

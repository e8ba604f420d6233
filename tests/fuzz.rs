//! The fuzz targets' entry points (`squall::fuzzing`, `docs/fuzzing.md`) on inputs kept
//! in the repository: every regression input a fuzzer found (`tests/data/fuzz/<target>/`),
//! every seed (`fuzz/seeds/<target>/`), and for the scenario target every scenario file
//! the other tests use. Each must pass its target's checks, as it does under the fuzzer.

use std::path::{Path, PathBuf};

use crate::support::root;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 3] = [
    ("scenario", squall::fuzzing::scenario),
    ("protocol", squall::fuzzing::protocol),
    ("ws_frames", squall::fuzzing::ws_frames),
];

#[test]
fn every_kept_input_passes_its_fuzz_target() {
    let regressions = root().join("tests/data/fuzz");
    for dir in files(&regressions) {
        let name = dir.file_name().unwrap().to_string_lossy();
        assert!(
            TARGETS.iter().any(|(target, _)| *target == name),
            "{}: not a fuzz target",
            dir.display()
        );
    }
    for (name, target) in TARGETS {
        let mut inputs = files(&regressions.join(name));
        inputs.extend(files(&root().join("fuzz/seeds").join(name)));
        if name == "scenario" {
            for dir in ["scenarios", "tests/data/invalid", "tests/data/malformed"] {
                inputs.extend(files_within(&root().join(dir)));
            }
        }
        assert!(inputs.len() >= 3, "{name}: only {} inputs", inputs.len());
        for input in inputs {
            let bytes = std::fs::read(&input).unwrap();
            if std::panic::catch_unwind(|| target(&bytes)).is_err() {
                panic!("{} fails the {name} target", input.display());
            }
        }
    }
}

/// The files in `dir` and in its subdirectories (`scenarios/outages/`), at any depth.
fn files_within(dir: &Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .flat_map(|p| {
            if p.is_dir() {
                files_within(&p)
            } else {
                vec![p]
            }
        })
        .collect()
}

/// The files (or directories) in `dir`, none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|entry| entry.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|path| !path.ends_with(".gitkeep") && !path.ends_with("README.md"));
    files.sort();
    files
}

//! The bad-input corpus (`tests/data/README.md`) through the built binary: every file
//! makes `squall validate` and `squall run` exit 2 with one line that names the file, its
//! line and key where it has them, and says what is wrong; nothing panics.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TempDir, root};

/// One file of the corpus and what its refusal must say.
struct Case {
    path: PathBuf,
    /// The line the refusal names, if it names one.
    line: Option<usize>,
    /// Said after the place: the key path (`: faults[0].for: `) or part of the message.
    says: String,
}

/// `tests/data/invalid/`: the first line is `# expect: <key.path> <line>`.
fn invalid() -> Vec<Case> {
    headed("tests/data/invalid", "<key.path> <line>", |expect| {
        let (key, line) = expect.rsplit_once(' ')?;
        Some((Some(line.parse().ok()?), format!(": {key}: ")))
    })
}

/// `tests/data/malformed/`: the first line is `# expect: <line or -> <message>`.
fn malformed() -> Vec<Case> {
    headed("tests/data/malformed", "<line or -> <message>", |expect| {
        let (line, says) = expect.split_once(' ')?;
        Some((line.parse().ok(), says.to_owned()))
    })
}

/// The files of `dir`, with what their `# expect: <form>` first line says, as `read`
/// reads it.
fn headed(
    dir: &str,
    form: &str,
    read: impl Fn(&str) -> Option<(Option<usize>, String)>,
) -> Vec<Case> {
    files(&root().join(dir))
        .into_iter()
        .map(|path| {
            let (line, says) = read(&header(&path))
                .unwrap_or_else(|| panic!("{}: `# expect: {form}`", path.display()));
            Case { path, line, says }
        })
        .collect()
}

/// `tests/data/garbage/`: files that cannot carry a header, so the expectations are here.
const GARBAGE: &[(&str, Option<usize>, &str)] = &[
    ("byte_order_mark_only.yaml", None, "is empty"),
    ("empty.yaml", None, "is empty"),
    (
        "gzip.yaml",
        None,
        "is not UTF-8 text (invalid byte at offset 1)",
    ),
    (
        "latin1.yaml",
        None,
        "is not UTF-8 text (invalid byte at offset 9)",
    ),
    (
        "nul_bytes.yaml",
        Some(1),
        "control characters are not allowed",
    ),
    (
        "random_bytes.yaml",
        None,
        "is not UTF-8 text (invalid byte at offset 0)",
    ),
    ("utf16.yaml", None, "is UTF-16 text"),
];

fn garbage() -> Vec<Case> {
    let dir = root().join("tests/data/garbage");
    let listed: Vec<PathBuf> = GARBAGE.iter().map(|(name, ..)| dir.join(name)).collect();
    assert_eq!(
        files(&dir),
        listed,
        "every garbage file needs a line in GARBAGE"
    );
    GARBAGE
        .iter()
        .map(|(name, line, says)| Case {
            path: dir.join(name),
            line: *line,
            says: (*says).to_owned(),
        })
        .collect()
}

/// Inputs too large to commit, written for the run.
fn generated(dir: &TempDir) -> Vec<Case> {
    let big = 10 << 20;
    let mut ten_mib = b"name: big\nclients: 10\n".to_vec();
    ten_mib.resize(big, b'#');
    std::fs::write(dir.path().join("ten_mib.yaml"), ten_mib).unwrap();
    let long_kind = format!(
        "name: long\nclients: 10\nfaults: [{{ kind: {} }}]\n",
        "a".repeat(200_000)
    );
    let cases = [
        (
            "ten_mib.yaml",
            None,
            "is 10485760 bytes; a scenario is at most 1 MiB",
        ),
        (
            "brackets.yaml",
            Some(2),
            "nests `[` and `{` more than 128 deep",
        ),
        (
            "braces.yaml",
            Some(2),
            "nests `[` and `{` more than 128 deep",
        ),
        ("dashes.yaml", Some(3), ": clients[0]: expected a map"),
        (
            "long_kind.yaml",
            Some(3),
            ": faults[0].kind: unknown value `aaaa",
        ),
        ("a_directory", None, "is a directory"),
        ("missing.yaml", None, "cannot read the file"),
    ];
    let texts = [
        format!("name: deep\nclients: {}", "[".repeat(100_000)),
        format!("name: deep\nclients: {}", "{a: ".repeat(100_000)),
        format!("name: deep\nclients:\n{}1\n", "- ".repeat(20_000)),
        long_kind,
    ];
    for ((name, ..), text) in cases[1..].iter().zip(&texts) {
        dir.write(name, text);
    }
    std::fs::create_dir(dir.path().join("a_directory")).unwrap();
    cases
        .iter()
        .map(|(name, line, says)| Case {
            path: dir.path().join(name),
            line: *line,
            says: (*says).to_owned(),
        })
        .collect()
}

fn corpus(dir: &TempDir) -> Vec<Case> {
    let mut cases = invalid();
    cases.extend(malformed());
    cases.extend(garbage());
    cases.extend(generated(dir));
    cases
}

/// The line naming `case` says all it should, and briefly.
fn check(case: &Case, shown: &str) {
    let file = case.path.display().to_string();
    let place = match case.line {
        Some(line) => format!("{file}:{line}:"),
        None => format!("{file}: "),
    };
    assert!(shown.starts_with(&place), "expected {place}…, got: {shown}");
    assert!(
        shown.contains(&case.says),
        "{file}: expected {:?} in: {shown}",
        case.says
    );
    assert!(shown.len() < 1000, "{file}: a {}-byte message", shown.len());
}

#[test]
fn validate_refuses_every_file_and_says_where_and_why() {
    let dir = TempDir::new("bad-input");
    let cases = corpus(&dir);
    assert!(cases.len() >= 90, "only {} cases", cases.len());
    let out = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("validate")
        .args(cases.iter().map(|case| &case.path))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "something validated"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), cases.len(), "one line per file:\n{stderr}");
    for (case, shown) in cases.iter().zip(lines) {
        check(case, shown);
    }
}

#[test]
fn run_refuses_every_file_before_running_anything() {
    let dir = TempDir::new("bad-input-run");
    let cases = corpus(&dir);
    let out = dir.path().join("reports");
    std::thread::scope(|scope| {
        for share in cases.chunks(cases.len().div_ceil(4)) {
            let out = &out;
            scope.spawn(move || {
                for case in share {
                    let stderr = run(&case.path, out);
                    assert!(!stderr.contains("panicked"), "{stderr}");
                    check(case, stderr.lines().next().unwrap_or_default());
                }
            });
        }
    });
    assert!(!out.exists(), "a report was written");
}

/// `squall run FILE`'s stderr; it must exit 2 within a few seconds.
fn run(path: &Path, out: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_squall"))
        .arg("run")
        .arg(path)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{}: `squall run` still going after 30s", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(2), "{}: {stderr}", path.display());
    stderr
}

/// A byte-order mark (some Windows editors write one) starts a scenario like any other.
#[test]
fn a_byte_order_mark_is_not_a_second_document() {
    let text = "\u{feff}name: bom\nclients: 10\nduration: 5 parsecs\n";
    let error = squall::scenario::from_str(text, "bom.yaml").unwrap_err();
    assert_eq!(error.path(), Some("duration"), "{error}");
    assert_eq!(error.line(), Some(3), "{error}");
    let scenario = squall::scenario::from_str(&text.replace("5 parsecs", "5s"), "bom.yaml");
    assert_eq!(scenario.unwrap().name, "bom");
    let faults = squall::scenario::faults_from_str("\u{feff}- { kind: reset }\n", "f.yaml");
    assert_eq!(faults.unwrap().len(), 1);
}

fn header(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let first = text.lines().next().unwrap_or_default();
    first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{}: no `# expect:` line", path.display()))
        .to_owned()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

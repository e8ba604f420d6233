//! deploy/kubernetes/: every manifest parses, with the kinds and fields an Indexed Job of
//! shards and its merge need; and the two Jobs' commands, run here the way the kubelet
//! would run them (`$(VAR)` expanded, volumes at temporary directories), merge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_yaml::Value;

use crate::support::{TempDir, counter, report_json, root};

/// Every document of every `.yaml` file under deploy/kubernetes/, with its file.
fn manifests() -> Vec<(PathBuf, Value)> {
    let mut files = Vec::new();
    walk(&root().join("deploy/kubernetes"), &mut files);
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
            out.push((path.clone(), value));
        }
    }
    assert!(!out.is_empty(), "no manifests under deploy/kubernetes/");
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

/// The value at a dotted path (`spec.template.spec`); a missing key panics naming it.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, key| {
        v.get(key)
            .unwrap_or_else(|| panic!("no `{key}` (of `{path}`) in {v:?}"))
    })
}

fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("`{path}` is not text"))
}

fn list<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path)
        .as_sequence()
        .unwrap_or_else(|| panic!("`{path}` is not a list"))
}

fn strings(v: &[Value]) -> Vec<&str> {
    v.iter()
        .map(|s| s.as_str().expect("a list of text"))
        .collect()
}

/// The one resource of `kind` named `name`.
fn resource<'a>(all: &'a [(PathBuf, Value)], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = all
        .iter()
        .map(|(_, v)| v)
        .filter(|v| v.get("kind").and_then(Value::as_str) == Some(kind))
        .filter(|v| {
            v.get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                == Some(name)
        })
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} named {name}");
    found[0]
}

/// The container's environment as a map (plain `value`s only).
fn env(container: &Value) -> BTreeMap<String, String> {
    list(container, "env")
        .iter()
        .map(|e| (text(e, "name").to_string(), text(e, "value").to_string()))
        .collect()
}

/// The mount path of the pod volume that satisfies `pick`.
fn mount_of(pod: &Value, container: &Value, pick: impl Fn(&Value) -> bool) -> String {
    let volume = list(pod, "volumes")
        .iter()
        .find(|v| pick(v))
        .expect("the volume is declared");
    let name = text(volume, "name");
    let mount = list(container, "volumeMounts")
        .iter()
        .find(|m| text(m, "name") == name)
        .unwrap_or_else(|| panic!("volume {name} is not mounted"));
    text(mount, "mountPath").to_string()
}

fn claim_is(name: &'static str) -> impl Fn(&Value) -> bool {
    move |v| {
        v.get("persistentVolumeClaim")
            .and_then(|c| c.get("claimName"))
            .and_then(Value::as_str)
            == Some(name)
    }
}

/// The exit codes that a `FailJob` rule of `job` stops the Job at, for `container`.
fn exit_codes_failing_the_job(job: &Value, container: &str) -> Vec<u64> {
    let mut codes = Vec::new();
    for rule in list(job, "spec.podFailurePolicy.rules") {
        let Some(on) = rule.get("onExitCodes") else {
            continue;
        };
        if text(rule, "action") == "FailJob" && text(on, "operator") == "In" {
            assert_eq!(text(on, "containerName"), container);
            codes.extend(list(on, "values").iter().filter_map(Value::as_u64));
        }
    }
    codes
}

const PVC: &str = "squall-reports";
const SCENARIO_MAP: &str = "squall-scenario";

#[test]
fn every_manifest_has_the_kinds_and_fields_the_run_needs() {
    let all = manifests();
    let mut kinds: Vec<(String, String)> = Vec::new();
    for (path, v) in &all {
        let kind = v
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{}: a document without `kind`", path.display()));
        assert!(
            v.get("apiVersion").and_then(Value::as_str).is_some(),
            "{}: no apiVersion",
            path.display()
        );
        if kind == "Kustomization" {
            // Every resource it names is there, and every manifest beside it is named.
            let dir = path.parent().unwrap();
            let named = strings(list(v, "resources"));
            for r in &named {
                assert!(dir.join(r).is_file(), "{}: {r} is missing", path.display());
            }
            for (other, _) in &all {
                let file = other.file_name().unwrap().to_str().unwrap();
                if other.parent() == Some(dir) && file != "kustomization.yaml" {
                    assert!(
                        named.contains(&file),
                        "{}: {file} is not listed",
                        path.display()
                    );
                }
            }
        }
        let name = if kind == "Kustomization" {
            path.display().to_string()
        } else {
            text(v, "metadata.name").to_string()
        };
        kinds.push((kind.to_string(), name));
    }
    kinds.sort();
    let names: Vec<(&str, &str)> = kinds
        .iter()
        .filter(|(k, _)| k != "Kustomization")
        .map(|(k, n)| (k.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("ConfigMap", SCENARIO_MAP),
            ("Job", "squall-merge"),
            ("Job", "squall-shards"),
            ("PersistentVolumeClaim", PVC),
        ]
    );
    assert_eq!(
        kinds.iter().filter(|(k, _)| k == "Kustomization").count(),
        2
    );

    let pvc = resource(&all, "PersistentVolumeClaim", PVC);
    assert!(strings(list(pvc, "spec.accessModes")).contains(&"ReadWriteMany"));
    assert!(
        at(pvc, "spec.resources.requests.storage")
            .as_str()
            .is_some()
    );
}

#[test]
fn the_shards_job_is_an_indexed_job_of_shard_runs_into_the_shared_volume() {
    let all = manifests();
    let job = resource(&all, "Job", "squall-shards");
    let spec = at(job, "spec");
    assert_eq!(text(spec, "completionMode"), "Indexed");
    let completions = at(spec, "completions")
        .as_u64()
        .expect("completions: a number");
    assert_eq!(at(spec, "parallelism").as_u64(), Some(completions));
    assert!(at(spec, "backoffLimitPerIndex").as_u64().is_some());
    let pod = at(spec, "template.spec");
    assert_eq!(text(pod, "restartPolicy"), "Never");
    let containers = list(pod, "containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    // Bad input fails the whole Job at once: every shard would refuse it alike.
    assert!(exit_codes_failing_the_job(job, text(c, "name")).contains(&2));

    let args = strings(list(c, "args"));
    let after = |flag: &str| {
        let i = args
            .iter()
            .position(|a| *a == flag)
            .unwrap_or_else(|| panic!("no {flag} in {args:?}"));
        args[i + 1]
    };
    assert_eq!(args[0], "run");
    assert_eq!(after("--shard"), "$(JOB_COMPLETION_INDEX)/$(SHARDS)");
    let env = env(c);
    assert_eq!(
        env["SHARDS"],
        completions.to_string(),
        "SHARDS = completions"
    );
    assert!(!env["RUN_ID"].is_empty());

    let reports = mount_of(pod, c, claim_is(PVC));
    assert_eq!(
        after("--into"),
        format!("{reports}/$(RUN_ID)/shards/$(JOB_COMPLETION_INDEX)")
    );

    // The scenario argument is the ConfigMap's key, where the ConfigMap is mounted, and
    // the scenario in it validates and has a client for every shard.
    let map = resource(&all, "ConfigMap", SCENARIO_MAP);
    let data = at(map, "data").as_mapping().unwrap();
    assert_eq!(data.len(), 1);
    let (key, scenario) = data.iter().next().unwrap();
    let mounted = mount_of(pod, c, |v| {
        v.get("configMap")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            == Some(SCENARIO_MAP)
    });
    assert_eq!(args[1], format!("{mounted}/{}", key.as_str().unwrap()));
    let scenario = squall::scenario::from_str(scenario.as_str().unwrap(), "ConfigMap")
        .unwrap_or_else(|e| panic!("the ConfigMap's scenario does not validate:\n{e}"));
    assert!(u64::from(scenario.peak_clients()) >= completions);

    let pvc = resource(&all, "PersistentVolumeClaim", PVC);
    assert_eq!(text(pvc, "metadata.name"), PVC);
}

#[test]
fn the_merge_job_runs_squall_merge_over_the_same_run() {
    let all = manifests();
    let shards = resource(&all, "Job", "squall-shards");
    let shards_c = &list(shards, "spec.template.spec.containers")[0];
    let job = resource(&all, "Job", "squall-merge");
    let pod = at(job, "spec.template.spec");
    assert_eq!(text(pod, "restartPolicy"), "Never");
    let c = &list(pod, "containers")[0];
    assert_eq!(strings(list(c, "command")), ["/bin/sh", "-c"]);
    let script = strings(list(c, "args"))[0];
    assert!(script.contains("squall merge \"$@\" -o \"$dir/report.json\""));
    // The verdict is final: a failed gate (1) and bad input (2) are not retried.
    let failing = exit_codes_failing_the_job(job, text(c, "name"));
    assert!(failing.contains(&1) && failing.contains(&2), "{failing:?}");

    let (mine, theirs) = (env(c), env(shards_c));
    assert_eq!(mine["SHARDS"], theirs["SHARDS"]);
    assert_eq!(mine["RUN_ID"], theirs["RUN_ID"]);
    assert_eq!(
        mine["REPORTS"],
        mount_of(pod, c, claim_is(PVC)),
        "REPORTS = where the reports volume is mounted"
    );
}

/// A scenario small enough to run twice in a test, in place of the ConfigMap's.
const SMALL: &str = "name: k8s-local
seed: 5
duration: 2s
clients: { count: 8, connect_rate: 100/s }
messages: { rate: 5/s, size: 32B }
faults:
  - { kind: reset, connections: 50%, at: 1s }
thresholds:
  messages_lost: [\"count == 0\"]
";

/// `$(NAME)` expanded from `vars`, as the kubelet does in args; then every path under a
/// mount moved to where that volume is here.
fn expand(arg: &str, vars: &[(&str, String)], mounts: &[(String, PathBuf)]) -> String {
    let mut out = arg.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("$({name})"), value);
    }
    assert!(!out.contains("$("), "{arg}: an undefined variable");
    for (mount, here) in mounts {
        if let Some(rest) = out.strip_prefix(mount.as_str()) {
            return format!("{}{rest}", here.display());
        }
    }
    out
}

fn merge(script: &str, reports: &Path, env: &BTreeMap<String, String>) -> Output {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_squall"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .env("SHARDS", &env["SHARDS"])
        .env("RUN_ID", &env["RUN_ID"])
        .env("REPORTS", reports)
        .output()
        .unwrap()
}

#[test]
fn the_jobs_commands_run_here_shard_by_shard_then_merge() {
    let all = manifests();
    let shards = resource(&all, "Job", "squall-shards");
    let pod = at(shards, "spec.template.spec");
    let c = &list(pod, "containers")[0];
    let reports_mount = mount_of(pod, c, claim_is(PVC));
    let scenario_mount = mount_of(pod, c, |v| v.get("configMap").is_some());
    let args = strings(list(c, "args"));

    let volumes = TempDir::new("k8s");
    let scenario_dir = volumes.path().join("scenario");
    let reports = volumes.path().join("reports");
    std::fs::create_dir_all(&scenario_dir).unwrap();
    std::fs::write(
        scenario_dir.join(args[1].rsplit('/').next().unwrap()),
        SMALL,
    )
    .unwrap();
    let mounts = [
        (scenario_mount, scenario_dir),
        (reports_mount, reports.clone()),
    ];

    // Two shards here, whatever the manifest's count: the commands are the same.
    let n = 2;
    let run_id = "local";
    let children: Vec<_> = (0..n)
        .map(|i| {
            let vars = [
                ("JOB_COMPLETION_INDEX", i.to_string()),
                ("SHARDS", n.to_string()),
                ("RUN_ID", run_id.to_string()),
            ];
            let argv: Vec<String> = args.iter().map(|a| expand(a, &vars, &mounts)).collect();
            Command::new(env!("CARGO_BIN_EXE_squall"))
                .args(&argv)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "shard {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let shard = report_json(&reports.join(run_id).join("shards").join(i.to_string()));
        assert_eq!(shard["run"]["shard"], format!("{i}/{n}"));
    }

    let merge_job = resource(&all, "Job", "squall-merge");
    let mc = &list(merge_job, "spec.template.spec.containers")[0];
    let script = strings(list(mc, "args"))[0];
    let env: BTreeMap<String, String> = [
        ("SHARDS".to_string(), n.to_string()),
        ("RUN_ID".to_string(), run_id.to_string()),
    ]
    .into();
    let out = merge(script, &reports, &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = reports.join(run_id);
    let merged = report_json(&run);
    assert_eq!(merged["verdict"], "pass");
    assert_eq!(counter(&merged, "sessions"), 8);
    assert!(run.join("report.md").is_file() && run.join("junit.xml").is_file());

    // A shard without a report is named, not merged away.
    std::fs::remove_file(run.join("shards/1/report.json")).unwrap();
    let out = merge(script, &reports, &env);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shard(s) 1 of 2"));
}

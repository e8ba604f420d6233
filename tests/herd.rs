//! `scenarios/outages/partition-and-herd.yaml` at 40 clients: after a 30 s partition the
//! jitter-free group returns in a stampede, the jittered one spread out, under the very
//! same faults and the same gateway limit; and the scenario's thresholds still hold.

use crate::support::{root, run_scenario};

/// The busiest second of connect attempts of `group`, in the run or in scope `scope`.
fn peak(r: &serde_json::Value, scope: Option<&str>, group: &str) -> u64 {
    let groups = match scope {
        None => &r["groups"],
        Some(key) => {
            let scopes = r["scopes"].as_array().expect("the report keeps scopes");
            let found = scopes.iter().find(|s| s["scope"] == key);
            &found.unwrap_or_else(|| panic!("no scope {key}"))["groups"]
        }
    };
    let g = groups
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == group))
        .unwrap_or_else(|| panic!("no group {group}: {groups}"));
    g["counters"]["connect_attempts_peak"]
        .as_u64()
        .unwrap_or_else(|| panic!("no connect_attempts_peak in {group}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_jitter_the_clients_come_back_in_a_stampede() {
    let path = root().join("scenarios/outages/partition-and-herd.yaml");
    let scenario = squall::scenario::load(&path)
        .unwrap()
        .with_clients(40)
        .unwrap();
    let r = run_scenario(scenario).await;
    assert_eq!(r["verdict"], "pass", "{}", r["thresholds"]);
    let counts: Vec<u64> = ["lockstep", "jittered"]
        .iter()
        .map(|g| {
            let groups = r["groups"].as_array().unwrap();
            let g = groups.iter().find(|x| x["name"] == *g).unwrap();
            g["counters"]["sessions"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(counts, [20, 20], "40 clients, shared out evenly");

    // Once the network heals, the lockstep clients all retry within the same second or
    // two; the jittered ones over the ten seconds of their capped backoff.
    let (lockstep, jittered) = (
        peak(&r, Some("after:cut"), "lockstep"),
        peak(&r, Some("after:cut"), "jittered"),
    );
    assert!(
        lockstep > jittered && lockstep >= 8,
        "after the heal: lockstep {lockstep}/s, jittered {jittered}/s"
    );
    // While the partition refuses everything, both groups bunch their first quick
    // retries into the second they noticed; full jitter halves the mean wait, so the
    // jittered group tries even more often then. Each group's own peak is its busiest
    // second, and the run's is the busiest second of both together.
    let whole: Vec<u64> = ["lockstep", "jittered"]
        .iter()
        .map(|g| peak(&r, None, g))
        .collect();
    assert!(whole.iter().all(|p| *p >= 20), "{whole:?}");
    let run_peak = r["counters"]["connect_attempts_peak"].as_u64().unwrap();
    assert!(run_peak <= whole[0] + whole[1] && run_peak >= whole[0].max(whole[1]));
    // The run's peak is the busiest second of both groups together, from the timeline.
    let busiest = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["connect_attempts"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(r["counters"]["connect_attempts_peak"], busiest);
    assert!(r["counters"]["server_handshakes_peak"].as_u64().unwrap() > 0);
}

//! Whether a scenario fits this process: file descriptors. A client costs one, the shim
//! two, the built-in server one. The soft limit is raised to the hard one first; a
//! scenario that still does not fit is refused up front with the numbers, rather than
//! failing with EMFILE halfway through.

/// Descriptors kept aside for the runtime, the listeners, the report and the event log.
const RESERVED_FDS: u64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error(
        "this scenario needs about {needed} open files ({clients} clients × {per_client} each, plus {RESERVED_FDS}), \
         but this process may open at most {limit} (hard limit). Spread it over processes \
         (`--workers N`, or `--shard I/N` on several machines), lower `clients`, or raise the limit \
         (`ulimit -Hn` as root) before running"
    )]
    Descriptors {
        needed: u64,
        clients: u64,
        per_client: u64,
        limit: u64,
    },
}

use crate::load::Shard;
use crate::scenario::{Scenario, Target};

/// Raises the soft descriptor limit to the hard one; returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024)
}

/// Descriptors one client costs in a process: its socket and the shim's two, plus the
/// built-in server's side when the server runs there too.
fn per_client(scenario: &Scenario) -> u64 {
    match scenario.target {
        Target::Builtin(_) => 4,
        Target::External(_) => 3,
    }
}

/// About how many descriptors a process running `clients` of `scenario` needs.
pub fn fds_needed(scenario: &Scenario, clients: u64) -> u64 {
    clients * per_client(scenario) + RESERVED_FDS
}

/// The fewest worker processes that give each at most `limit` descriptors.
pub fn workers_needed(scenario: &Scenario, limit: u64) -> u32 {
    let clients = u64::from(scenario.peak_clients());
    let per_process = limit.saturating_sub(RESERVED_FDS) / per_client(scenario);
    if per_process == 0 {
        return u32::MAX;
    }
    u32::try_from(clients.div_ceil(per_process).max(1)).unwrap_or(u32::MAX)
}

/// Raises the soft descriptor limit and checks the scenario (or its `shard`) fits under it.
pub fn check(scenario: &Scenario, shard: Option<Shard>) -> Result<(), ResourceError> {
    let limit = raise_fd_limit();
    let peak = scenario.peak_clients();
    let clients = u64::from(shard.map_or(peak, |s| s.share_of(peak)));
    let per_client = per_client(scenario);
    let needed = fds_needed(scenario, clients);
    if needed > limit {
        return Err(ResourceError::Descriptors {
            needed,
            clients,
            per_client,
            limit,
        });
    }
    Ok(())
}

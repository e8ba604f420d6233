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
         but this process may open at most {limit} (hard limit). Lower `clients`, or raise the limit \
         (`ulimit -Hn` as root) before running"
    )]
    Descriptors {
        needed: u64,
        clients: u64,
        per_client: u64,
        limit: u64,
    },
}

use crate::scenario::{Scenario, Target};

/// Raises the soft descriptor limit and checks the scenario fits under it.
pub fn check(scenario: &Scenario) -> Result<(), ResourceError> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let clients = u64::from(scenario.peak_clients());
    // Client socket + shim's two; the built-in server's side lives here too.
    let per_client = match scenario.target {
        Target::Builtin(_) => 4,
        Target::External(_) => 3,
    };
    let needed = clients * per_client + RESERVED_FDS;
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

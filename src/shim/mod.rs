//! The fault-injecting TCP shim.

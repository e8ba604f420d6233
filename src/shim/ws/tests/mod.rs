//! Tests of the WebSocket layer as a whole: following and cutting any stream in any
//! chunking, and the helpers every fault's tests share. A fault's own tests live beside it.

mod stream;
pub(crate) mod util;

//! How a background task or thread hands what it observed to the node's task, without knowing
//! the task's message type (so that the socket and disk edges do not import the driver).

use std::sync::Arc;

/// Delivers one report; false once the node's task is gone (the caller stops).
pub type Deliver<T> = Arc<dyn Fn(T) -> bool + Send + Sync>;

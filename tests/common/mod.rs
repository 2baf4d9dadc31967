//! What the process-level tests of `zkrs server` share.

use std::process::{Child, Output};
use std::time::{Duration, Instant};

/// Waits for `child` to exit and returns its output; a server still running after 20 s did
/// not refuse to start: it is killed and the test fails with its log.
pub fn wait_for_refusal(mut child: Child) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "zkrs server started instead of refusing; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

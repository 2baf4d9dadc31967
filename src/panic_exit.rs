//! A panic anywhere ends the process. tokio catches a panicking task and keeps the runtime
//! going, so without this a panic in the request loop would leave a server that is alive but
//! never serves again — invisible to systemd or Kubernetes, which restart only what exits.

/// Installs the hook: the panic is logged (and printed with its backtrace by Rust's default
/// hook), then the process aborts, exiting non-zero at once.
pub fn install() {
    let print_default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("{info}; exiting");
        print_default(info);
        std::process::abort();
    }));
}

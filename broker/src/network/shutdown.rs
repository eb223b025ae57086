//! The shutdown signal every network task watches.

use tokio::sync::watch;

/// Resolves once shutdown is asked for: the value is `true`, or the sender is gone (whoever
/// could have asked for it no longer exists). Cancel-safe.
pub async fn shutdown_signalled(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

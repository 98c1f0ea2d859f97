//! Process-wide TLS setup: the workspace uses rustls with the `ring` provider only.

use std::sync::Once;

/// Installs `ring` as the process-level rustls crypto provider.
///
/// kube-rs and reqwest both build rustls configs from the process default; installing it
/// once, before any client or server exists, makes provider selection deterministic.
/// Safe to call many times.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means another provider was installed first, which is fine as long as
        // it exists; we never compile a second backend in, so this cannot be aws-lc.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

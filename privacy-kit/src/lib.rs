//! Retention policies, deletion cascades, export bundles and an encrypted token vault.

//! The token vault of the service: `privacy-kit`'s AES-256-GCM vault with a key from the
//! configuration or from a key file created with 0600 permissions under the data directory.

use std::io::Write;
use std::path::Path;

use privacy_kit::vault::{Keyring, SealedToken, TokenBinding, TokenVault};
use privacy_kit::Secret;

use super::config::Config;
use super::error::{Error, ErrorKind, Result};

/// The tenant every token of this single-tenant service is bound to.
const TENANT: &str = "igdm";
/// The key id of the configured key.
const KEY_ID: &str = "k1";

/// Seals and opens account tokens.
#[derive(Debug, Clone)]
pub struct Vault {
    vault: std::sync::Arc<TokenVault>,
    pseudonymizer: privacy_kit::schema::Pseudonymizer,
}

impl Vault {
    /// Builds the vault from `vault_key` (64 hex characters), else from the key file, which is
    /// generated (0600) when missing.
    pub fn from_config(config: &Config) -> Result<Vault> {
        let key = match &config.vault_key {
            Some(hex) => parse_key(hex).map_err(|why| {
                Error::config(format!(
                    "vault_key is invalid: {why}; give 64 hex characters (32 bytes)"
                ))
            })?,
            None => load_or_create_key_file(&config.vault_key_path())?,
        };
        // Pseudonyms (ids kept in deletion receipts and the audit register) use a key derived
        // from the vault key, so they stay stable across restarts and differ per installation.
        let derived = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(b"igdm pseudonyms\0");
            h.update(key.expose());
            h.finalize().to_vec()
        };
        let pseudonymizer = privacy_kit::schema::Pseudonymizer::new(Secret::new(derived))?;
        let keyring = Keyring::new(KEY_ID, key)?;
        Ok(Vault {
            vault: std::sync::Arc::new(TokenVault::new(keyring)),
            pseudonymizer,
        })
    }

    /// The pseudonymizer of ids kept after a deletion (HMAC-SHA256 under a key derived from the
    /// vault key).
    pub fn pseudonymizer(&self) -> &privacy_kit::schema::Pseudonymizer {
        &self.pseudonymizer
    }

    /// Seals `token` for `account`; the text to store.
    pub fn seal(&self, account: &str, token: &str) -> Result<String> {
        let binding = TokenBinding::new(TENANT, account)?;
        Ok(self.vault.seal(&binding, &Secret::from(token))?.to_string())
    }

    /// Opens the stored text of `account`'s token.
    pub fn open(&self, account: &str, sealed: &str) -> Result<Secret<String>> {
        let binding = TokenBinding::new(TENANT, account)?;
        let sealed: SealedToken = sealed.parse()?;
        Ok(self.vault.open(&binding, &sealed)?)
    }
}

fn parse_key(text: &str) -> std::result::Result<Secret<[u8; 32]>, String> {
    let bytes = hex::decode(text.trim()).map_err(|e| e.to_string())?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{} bytes instead of 32", b.len()))?;
    Ok(Secret::new(key))
}

fn load_or_create_key_file(path: &Path) -> Result<Secret<[u8; 32]>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_permissions(path)?;
            parse_key(&text).map_err(|why| {
                Error::new(
                    ErrorKind::Vault,
                    format!(
                        "the vault key file {} is invalid ({why}); restore it from backup (tokens sealed with it cannot be read otherwise)",
                        path.display()
                    ),
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)?;
                }
            }
            let key = privacy_kit::vault::random_key()?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(path).map_err(|e| {
                Error::new(
                    ErrorKind::Vault,
                    format!("cannot create the vault key file {}: {e}", path.display()),
                )
            })?;
            file.write_all(hex::encode(key.expose()).as_bytes())?;
            file.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(Error::new(
            ErrorKind::Vault,
            format!("cannot read the vault key file {}: {e}", path.display()),
        )),
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::new(
            ErrorKind::Vault,
            format!(
                "the vault key file {} is readable by others (mode {:o}); run `chmod 600` on it",
                path.display(),
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::db::testing::TempDir;
    use super::*;

    #[test]
    fn key_file_is_created_0600_and_reused() {
        let dir = TempDir::new();
        let config = Config::for_tests(&dir.0);
        let vault = Vault::from_config(&config).unwrap();
        let sealed = vault.seal("17841400000000001", "IGAA-token").unwrap();
        assert!(!sealed.contains("IGAA-token"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(config.vault_key_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Vault::from_config(&config).unwrap();
        assert_eq!(
            again.open("17841400000000001", &sealed).unwrap().expose(),
            "IGAA-token"
        );
        assert!(again.open("17841400000000002", &sealed).is_err());
    }

    #[test]
    fn configured_key_must_be_32_bytes() {
        let config = Config {
            vault_key: Some("abcd".into()),
            ..Config::default()
        };
        assert_eq!(
            Vault::from_config(&config).unwrap_err().kind(),
            ErrorKind::Config
        );
    }
}

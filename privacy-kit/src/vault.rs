//! The token vault: AES-256-GCM envelope encryption for access tokens.
//!
//! Every token gets its own random data key; the token is encrypted with the data key, and the
//! data key is encrypted ("wrapped") with a key-encryption key from the [`Keyring`]. Both
//! encryptions carry associated data naming the token's tenant and account
//! ([`TokenBinding`]), so a ciphertext copied to another row does not decrypt. Each ciphertext
//! names the id of the key that wrapped it, so keys can be rotated: [`rotate_keys`] re-wraps stored
//! tokens under the active key in batches.
//!
//! ```
//! use privacy_kit::vault::{Keyring, TokenBinding, TokenVault};
//! use privacy_kit::Secret;
//!
//! let vault = TokenVault::new(Keyring::generate("k1")?);
//! let owner = TokenBinding::new("org_1", "ig_17841400000000001")?;
//! let sealed = vault.seal(&owner, &Secret::from("IGQVJ-token"))?;
//! assert_eq!(sealed.key_id(), "k1");
//! let text = sealed.to_string(); // store this column
//! let opened = vault.open(&owner, &text.parse()?)?;
//! assert_eq!(opened.expose(), "IGQVJ-token");
//!
//! // The same ciphertext on another account's row does not decrypt.
//! let other = TokenBinding::new("org_2", "ig_17841400000000001")?;
//! assert!(vault.open(&other, &sealed).is_err());
//! # Ok::<(), privacy_kit::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use crate::store::TokenStore;

/// The version byte of the current ciphertext format.
pub const FORMAT_VERSION: u8 = 1;
/// The prefix of the text form of a sealed token.
pub const TEXT_PREFIX: &str = "pkv1.";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const WRAPPED_LEN: usize = KEY_LEN + TAG_LEN;
const MAX_KEY_ID: usize = 64;

/// The owner of a token: the tenant (organization) and the account (Instagram connection) whose
/// row holds it. Bound into every ciphertext as associated data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TokenBinding {
    tenant: String,
    account: String,
}

impl TokenBinding {
    /// A binding of a tenant and an account id; both must be non-empty.
    pub fn new(tenant: impl Into<String>, account: impl Into<String>) -> Result<Self> {
        let tenant = tenant.into();
        let account = account.into();
        if tenant.is_empty() || account.is_empty() {
            return Err(Error::invalid(
                "a token binding needs a non-empty tenant and account id",
            ));
        }
        Ok(Self { tenant, account })
    }

    /// The tenant id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The account id.
    pub fn account(&self) -> &str {
        &self.account
    }
}

fn check_key_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_KEY_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "key id `{id}` is not valid; use 1 to {MAX_KEY_ID} characters of A-Z, a-z, 0-9, `-`, `_`, `.`"
        )))
    }
}

/// The key-encryption keys: one active key that seals new tokens, and older keys kept to open
/// tokens sealed before a rotation.
#[derive(Clone)]
pub struct Keyring {
    active: String,
    keys: BTreeMap<String, Secret<[u8; KEY_LEN]>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A keyring whose active key is `key` under `id`.
    pub fn new(id: impl Into<String>, key: Secret<[u8; KEY_LEN]>) -> Result<Self> {
        let id = id.into();
        check_key_id(&id)?;
        let mut keys = BTreeMap::new();
        keys.insert(id.clone(), key);
        Ok(Self { active: id, keys })
    }

    /// A keyring with a fresh random key from the operating system under `id`.
    pub fn generate(id: impl Into<String>) -> Result<Self> {
        Self::new(id, random_key()?)
    }

    /// Adds a key. It does not become active; call [`activate`](Self::activate) for that.
    pub fn add(&mut self, id: impl Into<String>, key: Secret<[u8; KEY_LEN]>) -> Result<()> {
        let id = id.into();
        check_key_id(&id)?;
        if self.keys.contains_key(&id) {
            return Err(Error::invalid(format!(
                "key id `{id}` is already in the keyring; pick a new id for a new key"
            )));
        }
        self.keys.insert(id, key);
        Ok(())
    }

    /// Makes the key `id` the one that seals new tokens.
    pub fn activate(&mut self, id: &str) -> Result<()> {
        if !self.keys.contains_key(id) {
            return Err(Error::new(
                ErrorKind::UnknownKey,
                format!("key id `{id}` is not in the keyring; add it before activating it"),
            ));
        }
        self.active = id.to_owned();
        Ok(())
    }

    /// Removes a retired key. The active key cannot be removed.
    pub fn remove(&mut self, id: &str) -> Result<bool> {
        if id == self.active {
            return Err(Error::invalid(format!(
                "key `{id}` is active; activate another key before removing it"
            )));
        }
        Ok(self.keys.remove(id).is_some())
    }

    /// The id of the active key.
    pub fn active_id(&self) -> &str {
        &self.active
    }

    /// The ids of all keys.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    fn cipher(&self, id: &str) -> Result<Aes256Gcm> {
        let key = self.keys.get(id).ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownKey,
                format!("the ciphertext was sealed with key `{id}`, which the keyring does not hold; add that key to open it"),
            )
        })?;
        cipher_for(key)
    }
}

/// A fresh random 256-bit key from the operating system.
pub fn random_key() -> Result<Secret<[u8; KEY_LEN]>> {
    let mut key = Secret::new([0u8; KEY_LEN]);
    crate::random::fill(key.expose_mut())?;
    Ok(key)
}

fn cipher_for(key: &Secret<[u8; KEY_LEN]>) -> Result<Aes256Gcm> {
    Aes256Gcm::new_from_slice(key.expose())
        .map_err(|_| Error::invalid("an AES-256 key must be 32 bytes"))
}

fn nonce() -> Result<[u8; NONCE_LEN]> {
    let mut n = [0u8; NONCE_LEN];
    crate::random::fill(&mut n)?;
    Ok(n)
}

fn push_field(aad: &mut Vec<u8>, value: &[u8]) {
    aad.extend_from_slice(&(value.len() as u64).to_be_bytes());
    aad.extend_from_slice(value);
}

fn wrap_aad(key_id: &str, binding: &TokenBinding) -> Vec<u8> {
    let mut aad = b"privacy-kit/vault/v1/wrap".to_vec();
    push_field(&mut aad, key_id.as_bytes());
    push_field(&mut aad, binding.tenant.as_bytes());
    push_field(&mut aad, binding.account.as_bytes());
    aad
}

fn data_aad(binding: &TokenBinding) -> Vec<u8> {
    let mut aad = b"privacy-kit/vault/v1/data".to_vec();
    push_field(&mut aad, binding.tenant.as_bytes());
    push_field(&mut aad, binding.account.as_bytes());
    aad
}

fn decrypt_failed() -> Error {
    Error::new(
        ErrorKind::Decrypt,
        "the token does not decrypt: the key is wrong, the ciphertext belongs to another tenant or account, or it was altered",
    )
}

/// An encrypted token in the versioned vault format. Its text form (`Display`/`FromStr`) is
/// `pkv1.` followed by URL-safe base64; store that string.
///
/// Layout of the bytes (format 1): version byte, key id length, key id, wrap nonce (12),
/// wrapped data key (48), data nonce (12), ciphertext with tag (16 or more).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SealedToken {
    bytes: Vec<u8>,
    key_id_len: usize,
}

impl fmt::Debug for SealedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedToken")
            .field("key_id", &self.key_id())
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl SealedToken {
    /// Parses the binary format, checking its structure (not its authenticity).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        let format_err = |what: &str| {
            Error::new(
                ErrorKind::Format,
                format!("the sealed token is not in vault format {FORMAT_VERSION}: {what}"),
            )
        };
        let (&version, rest) = bytes
            .split_first()
            .ok_or_else(|| format_err("it is empty"))?;
        if version != FORMAT_VERSION {
            return Err(format_err(&format!("it has version {version}")));
        }
        let (&id_len, rest) = rest
            .split_first()
            .ok_or_else(|| format_err("it ends before the key id"))?;
        let id_len = usize::from(id_len);
        let id = rest
            .get(..id_len)
            .ok_or_else(|| format_err("it ends inside the key id"))?;
        let id = std::str::from_utf8(id).map_err(|_| format_err("the key id is not text"))?;
        check_key_id(id).map_err(|_| format_err("the key id is not valid"))?;
        let min = 2 + id_len + NONCE_LEN + WRAPPED_LEN + NONCE_LEN + TAG_LEN;
        if bytes.len() < min {
            return Err(format_err("it is too short"));
        }
        Ok(Self {
            bytes,
            key_id_len: id_len,
        })
    }

    /// The binary form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The id of the key that wrapped this token's data key.
    pub fn key_id(&self) -> &str {
        // Checked in `from_bytes`/`assemble`; fall back to "" rather than panic.
        self.bytes
            .get(2..2 + self.key_id_len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    fn parts(&self) -> (&[u8], &[u8], &[u8], &[u8]) {
        let start = 2 + self.key_id_len;
        let (wrap_nonce, rest) = self.bytes[start..].split_at(NONCE_LEN);
        let (wrapped, rest) = rest.split_at(WRAPPED_LEN);
        let (data_nonce, ciphertext) = rest.split_at(NONCE_LEN);
        (wrap_nonce, wrapped, data_nonce, ciphertext)
    }

    fn assemble(
        key_id: &str,
        wrap_nonce: &[u8],
        wrapped: &[u8],
        data_nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<Self> {
        let mut bytes = Vec::with_capacity(
            2 + key_id.len()
                + wrap_nonce.len()
                + wrapped.len()
                + data_nonce.len()
                + ciphertext.len(),
        );
        bytes.push(FORMAT_VERSION);
        bytes.push(u8::try_from(key_id.len()).map_err(|_| Error::invalid("key id too long"))?);
        bytes.extend_from_slice(key_id.as_bytes());
        bytes.extend_from_slice(wrap_nonce);
        bytes.extend_from_slice(wrapped);
        bytes.extend_from_slice(data_nonce);
        bytes.extend_from_slice(ciphertext);
        Self::from_bytes(bytes)
    }
}

impl fmt::Display for SealedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(TEXT_PREFIX)?;
        f.write_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.bytes))
    }
}

impl FromStr for SealedToken {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let body = s.strip_prefix(TEXT_PREFIX).ok_or_else(|| {
            Error::new(
                ErrorKind::Format,
                format!("a sealed token starts with `{TEXT_PREFIX}`; this value does not"),
            )
        })?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| {
                Error::new(
                    ErrorKind::Format,
                    "a sealed token's body must be URL-safe base64 without padding",
                )
            })?;
        Self::from_bytes(bytes)
    }
}

impl TryFrom<String> for SealedToken {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<SealedToken> for String {
    fn from(t: SealedToken) -> Self {
        t.to_string()
    }
}

/// Seals and opens tokens with the keys of a [`Keyring`].
#[derive(Debug, Clone)]
pub struct TokenVault {
    keyring: Keyring,
}

impl TokenVault {
    /// A vault over a keyring.
    pub fn new(keyring: Keyring) -> Self {
        Self { keyring }
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The keyring, to add or activate keys.
    pub fn keyring_mut(&mut self) -> &mut Keyring {
        &mut self.keyring
    }

    /// Encrypts `token` for `binding` under the active key, with a fresh data key and nonces.
    pub fn seal(&self, binding: &TokenBinding, token: &Secret<String>) -> Result<SealedToken> {
        let data_key = random_key()?;
        let data_nonce = nonce()?;
        let ciphertext = cipher_for(&data_key)?
            .encrypt(
                &data_nonce.into(),
                Payload {
                    msg: token.expose().as_bytes(),
                    aad: &data_aad(binding),
                },
            )
            .map_err(|_| Error::invalid("the token is too long to encrypt"))?;
        self.wrap_and_assemble(binding, &data_key, &data_nonce, &ciphertext)
    }

    fn wrap_and_assemble(
        &self,
        binding: &TokenBinding,
        data_key: &Secret<[u8; KEY_LEN]>,
        data_nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<SealedToken> {
        let key_id = self.keyring.active_id();
        let wrap_nonce = nonce()?;
        let wrapped = self
            .keyring
            .cipher(key_id)?
            .encrypt(
                &wrap_nonce.into(),
                Payload {
                    msg: data_key.expose(),
                    aad: &wrap_aad(key_id, binding),
                },
            )
            .map_err(|_| Error::invalid("the data key could not be wrapped"))?;
        SealedToken::assemble(key_id, &wrap_nonce, &wrapped, data_nonce, ciphertext)
    }

    fn unwrap_data_key(
        &self,
        binding: &TokenBinding,
        sealed: &SealedToken,
    ) -> Result<Secret<[u8; KEY_LEN]>> {
        let (wrap_nonce, wrapped, _, _) = sealed.parts();
        let wrap_nonce: [u8; NONCE_LEN] = wrap_nonce.try_into().map_err(|_| decrypt_failed())?;
        let key_id = sealed.key_id();
        let plain = Secret::new(
            self.keyring
                .cipher(key_id)?
                .decrypt(
                    &wrap_nonce.into(),
                    Payload {
                        msg: wrapped,
                        aad: &wrap_aad(key_id, binding),
                    },
                )
                .map_err(|_| decrypt_failed())?,
        );
        let key: [u8; KEY_LEN] = plain
            .expose()
            .as_slice()
            .try_into()
            .map_err(|_| decrypt_failed())?;
        Ok(Secret::new(key))
    }

    /// Decrypts a token sealed for `binding`. Fails with [`ErrorKind::Decrypt`] for the wrong key,
    /// another binding, or altered bytes, and with [`ErrorKind::UnknownKey`] when the keyring
    /// lacks the key.
    pub fn open(&self, binding: &TokenBinding, sealed: &SealedToken) -> Result<Secret<String>> {
        let data_key = self.unwrap_data_key(binding, sealed)?;
        let (_, _, data_nonce, ciphertext) = sealed.parts();
        let data_nonce: [u8; NONCE_LEN] = data_nonce.try_into().map_err(|_| decrypt_failed())?;
        let plain = cipher_for(&data_key)?
            .decrypt(
                &data_nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: &data_aad(binding),
                },
            )
            .map_err(|_| decrypt_failed())?;
        String::from_utf8(plain).map(Secret::new).map_err(|e| {
            let mut bytes = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut bytes);
            Error::new(ErrorKind::Decrypt, "the decrypted token is not text")
        })
    }

    /// Re-wraps the token's data key under the active key. Returns `None` when it already is
    /// under the active key. The token's own ciphertext is unchanged; the old key is needed.
    pub fn reseal(
        &self,
        binding: &TokenBinding,
        sealed: &SealedToken,
    ) -> Result<Option<SealedToken>> {
        if sealed.key_id() == self.keyring.active_id() {
            return Ok(None);
        }
        let data_key = self.unwrap_data_key(binding, sealed)?;
        let (_, _, data_nonce, ciphertext) = sealed.parts();
        self.wrap_and_assemble(binding, &data_key, data_nonce, ciphertext)
            .map(Some)
    }
}

/// What a key rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationReport {
    /// Tokens re-wrapped under the active key.
    pub resealed: u64,
    /// Tokens already under the active key.
    pub current: u64,
    /// Tokens that changed in the store while being rotated (left for the next run).
    pub conflicts: u64,
    /// Tokens that could not be opened, with the error kind; they stay as they were.
    pub failed: Vec<(TokenBinding, ErrorKind)>,
    /// Batches read from the store.
    pub batches: u64,
}

/// Re-wraps every stored token that is not under the active key, reading `batch_size` tokens at a
/// time. Safe to run again: tokens already rotated are counted as current.
pub async fn rotate_keys(
    vault: &TokenVault,
    store: &dyn TokenStore,
    batch_size: usize,
) -> Result<RotationReport> {
    if batch_size == 0 {
        return Err(Error::invalid("the rotation batch size must be at least 1"));
    }
    let mut report = RotationReport::default();
    let mut after: Option<TokenBinding> = None;
    loop {
        let batch = store.sealed_tokens(after.as_ref(), batch_size).await?;
        report.batches += 1;
        let Some(last) = batch.last() else { break };
        after = Some(last.binding.clone());
        let full = batch.len() >= batch_size;
        for stored in batch {
            match vault.reseal(&stored.binding, &stored.sealed) {
                Ok(None) => report.current += 1,
                Ok(Some(new)) => {
                    if store
                        .replace_sealed(&stored.binding, &stored.sealed, new)
                        .await?
                    {
                        report.resealed += 1;
                    } else {
                        report.conflicts += 1;
                    }
                }
                Err(e) => report.failed.push((stored.binding, e.kind().clone())),
            }
        }
        if !full {
            break;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, StoredToken};

    fn binding(t: &str, a: &str) -> TokenBinding {
        TokenBinding::new(t, a).unwrap()
    }

    #[test]
    fn round_trip_text_and_binary() {
        let vault = TokenVault::new(Keyring::generate("k1").unwrap());
        let b = binding("org", "acct");
        for token in ["", "x", "IGQVJ-abc", &"long".repeat(500), "ünïcødé"] {
            let sealed = vault.seal(&b, &Secret::from(token)).unwrap();
            let text = sealed.to_string();
            assert!(text.starts_with(TEXT_PREFIX));
            assert!(!text.contains(token) || token.len() < 2);
            let parsed: SealedToken = text.parse().unwrap();
            assert_eq!(parsed, sealed);
            assert_eq!(vault.open(&b, &parsed).unwrap().expose(), token);
            let json = serde_json::to_string(&sealed).unwrap();
            let back: SealedToken = serde_json::from_str(&json).unwrap();
            assert_eq!(vault.open(&b, &back).unwrap().expose(), token);
        }
    }

    #[test]
    fn same_token_seals_differently() {
        let vault = TokenVault::new(Keyring::generate("k1").unwrap());
        let b = binding("org", "acct");
        let a = vault.seal(&b, &Secret::from("t")).unwrap();
        let c = vault.seal(&b, &Secret::from("t")).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn wrong_key_fails() {
        let b = binding("org", "acct");
        let v1 = TokenVault::new(Keyring::generate("k1").unwrap());
        let v2 = TokenVault::new(Keyring::generate("k1").unwrap());
        let sealed = v1.seal(&b, &Secret::from("tok")).unwrap();
        assert_eq!(
            v2.open(&b, &sealed).unwrap_err().kind(),
            &ErrorKind::Decrypt
        );
        let v3 = TokenVault::new(Keyring::generate("other").unwrap());
        assert_eq!(
            v3.open(&b, &sealed).unwrap_err().kind(),
            &ErrorKind::UnknownKey
        );
    }

    #[test]
    fn moved_ciphertext_fails() {
        let vault = TokenVault::new(Keyring::generate("k1").unwrap());
        let sealed = vault
            .seal(&binding("org1", "acct1"), &Secret::from("s3cr3t-value"))
            .unwrap();
        for other in [
            binding("org2", "acct1"),
            binding("org1", "acct2"),
            // length-prefixed fields: shifting a character between tenant and account differs
            binding("org1a", "cct1"),
        ] {
            let err = vault.open(&other, &sealed).unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Decrypt);
            assert!(!err.to_string().contains("s3cr3t"));
        }
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let vault = TokenVault::new(Keyring::generate("k1").unwrap());
        let b = binding("org", "acct");
        let sealed = vault.seal(&b, &Secret::from("token-value")).unwrap();
        let bytes = sealed.as_bytes().to_vec();
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x01;
            let outcome = SealedToken::from_bytes(t).and_then(|s| vault.open(&b, &s));
            assert!(outcome.is_err(), "flip at byte {i} went unnoticed");
        }
        // truncation and garbage never panic
        for n in 0..bytes.len() {
            assert!(SealedToken::from_bytes(bytes[..n].to_vec())
                .and_then(|s| vault.open(&b, &s))
                .is_err());
        }
        for bad in ["", "pkv1.", "pkv1.!!", "pkv2.AAAA", "nope"] {
            assert_eq!(
                bad.parse::<SealedToken>().unwrap_err().kind(),
                &ErrorKind::Format
            );
        }
    }

    #[test]
    fn keyring_rules() {
        let mut ring = Keyring::generate("k1").unwrap();
        assert!(ring.add("k1", random_key().unwrap()).is_err());
        assert!(ring.add("bad id", random_key().unwrap()).is_err());
        assert!(ring.activate("k9").is_err());
        assert!(ring.remove("k1").is_err());
        ring.add("k2", random_key().unwrap()).unwrap();
        ring.activate("k2").unwrap();
        assert!(ring.remove("k1").unwrap());
        assert!(!format!("{ring:?}").contains('['.to_string().repeat(2).as_str()));
        assert!(TokenBinding::new("", "a").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_token_round_trips_only_on_its_own_row(
            token in ".{0,300}",
            tenant in "[a-z0-9_]{1,20}",
            account in "[0-9]{1,20}",
            other in "[a-z0-9_]{1,20}",
        ) {
            let vault = TokenVault::new(Keyring::generate("k1").unwrap());
            let b = binding(&tenant, &account);
            let sealed = vault.seal(&b, &Secret::new(token.clone())).unwrap();
            let parsed: SealedToken = sealed.to_string().parse().unwrap();
            let opened = vault.open(&b, &parsed).unwrap();
            proptest::prop_assert_eq!(opened.expose(), &token);
            if other != tenant {
                let moved = binding(&other, &account);
                proptest::prop_assert!(vault.open(&moved, &parsed).is_err());
            }
        }
    }

    #[tokio::test]
    async fn rotation_reseals_in_batches() {
        let store = MemoryStore::new();
        let mut vault = TokenVault::new(Keyring::generate("k1").unwrap());
        let mut originals = Vec::new();
        for i in 0..25 {
            let b = binding(&format!("org{}", i % 3), &format!("acct{i:02}"));
            let token = format!("token-{i}");
            let sealed = vault.seal(&b, &Secret::new(token.clone())).unwrap();
            store.put_token(StoredToken::new(b.clone(), sealed));
            originals.push((b, token));
        }
        vault
            .keyring_mut()
            .add("k2", random_key().unwrap())
            .unwrap();
        vault.keyring_mut().activate("k2").unwrap();

        let report = rotate_keys(&vault, &store, 10).await.unwrap();
        assert_eq!(report.resealed, 25);
        assert_eq!(report.current, 0);
        assert!(report.failed.is_empty());
        assert_eq!(report.batches, 3);

        // old key gone: everything still opens, and everything is under k2
        vault.keyring_mut().remove("k1").unwrap();
        for (b, token) in &originals {
            let sealed = store.token(b).unwrap();
            assert_eq!(sealed.key_id(), "k2");
            assert_eq!(vault.open(b, &sealed).unwrap().expose(), token);
        }

        // a second run finds nothing to do
        let again = rotate_keys(&vault, &store, 10).await.unwrap();
        assert_eq!(again.resealed, 0);
        assert_eq!(again.current, 25);
        assert!(rotate_keys(&vault, &store, 0).await.is_err());
    }

    #[tokio::test]
    async fn rotation_reports_unopenable_tokens() {
        let store = MemoryStore::new();
        let stranger = TokenVault::new(Keyring::generate("k0").unwrap());
        let b = binding("org", "acct");
        store.put_token(StoredToken::new(
            b.clone(),
            stranger.seal(&b, &Secret::from("x")).unwrap(),
        ));
        let vault = TokenVault::new(Keyring::generate("k1").unwrap());
        let report = rotate_keys(&vault, &store, 5).await.unwrap();
        assert_eq!(report.failed, vec![(b.clone(), ErrorKind::UnknownKey)]);
        assert_eq!(store.token(&b).unwrap().key_id(), "k0");
    }
}

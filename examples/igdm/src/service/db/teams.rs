//! Organizations, users, members, invitations, sessions and API keys.
//!
//! Secrets are stored only as one-way hashes: passwords as argon2id PHC strings, session tokens,
//! API keys and invitation tokens (random, 256 bits) as SHA-256 hex.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Db, Result, Tx};
use crate::service::error::{Error, ErrorKind};

/// The organization that config `api_keys` (operator keys) belong to, and that accounts
/// connected by the CLI or without a caller join.
pub const BOOTSTRAP_ORG: &str = "bootstrap";

/// A member's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Handles conversations: reads the inbox, contacts and conversations, and replies.
    Agent,
    /// Runs the organization's tools: connections, automations, API keys, members except Owners.
    Admin,
    /// Everything, including Owners, settings and deleting the organization.
    Owner,
}

impl Role {
    /// The stored name: `owner`, `admin` or `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Agent => "agent",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "agent" => Some(Role::Agent),
            _ => None,
        }
    }
}

/// A random secret with a readable prefix: `<prefix><64 hex>` (256 bits).
pub fn new_secret(prefix: &str) -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("the system random number generator failed: {e}"),
        )
    })?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// A new random id: `<prefix><32 hex>`.
pub fn new_id(prefix: &str) -> Result<String> {
    let mut s = new_secret(prefix)?;
    s.truncate(prefix.len() + 32);
    Ok(s)
}

/// SHA-256 hex of a high-entropy secret (session token, API key, invitation token).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(&Sha256::digest(secret.as_bytes())[..])
}

/// argon2id with the given memory cost (KiB); the other parameters are argon2's defaults.
fn argon2(memory_kib: u32) -> argon2::Argon2<'static> {
    let params = argon2::Params::new(
        memory_kib.max(argon2::Params::MIN_M_COST),
        argon2::Params::DEFAULT_T_COST,
        argon2::Params::DEFAULT_P_COST,
        None,
    )
    .unwrap_or_default();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes a password with argon2id and a random salt (a PHC string).
pub fn hash_password(password: &str, memory_kib: u32) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("the system random number generator failed: {e}"),
        )
    })?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot encode a salt: {e}")))?;
    argon2(memory_kib)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot hash the password: {e}")))
}

/// Whether `password` matches the stored PHC string (parameters are read from the string).
pub fn verify_password(password: &str, stored: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// An organization.
#[derive(Debug, Clone, Serialize)]
pub struct Organization {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was created (Unix ms).
    pub created_at: i64,
}

/// A user (never the password hash).
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Its id.
    pub id: String,
    /// The e-mail address (lower-case).
    pub email: String,
}

/// A member of an organization.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// The user id.
    pub user_id: String,
    /// The e-mail address.
    pub email: String,
    /// The role.
    pub role: Role,
    /// When the user joined (Unix ms).
    pub joined_at: i64,
}

/// A pending invitation (never its token).
#[derive(Debug, Clone, Serialize)]
pub struct Invitation {
    /// Its id.
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// Who is invited.
    pub email: String,
    /// The role they get.
    pub role: Role,
    /// When it expires (Unix ms).
    pub expires_at: i64,
    /// When it was accepted, if it was.
    pub accepted_at: Option<i64>,
}

/// An API key as listed (never the key).
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The role it acts with.
    pub role: Role,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// When it was created (Unix ms).
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// When it was last used (Unix ms).
    pub last_used_at: Option<i64>,
}

fn role(r: &AnyRow) -> Result<Role> {
    let name: String = r.try_get("role")?;
    Role::parse(&name).ok_or_else(|| {
        Error::new(
            ErrorKind::Database,
            format!("unknown role `{name}` in the database"),
        )
    })
}

/// Normalizes an e-mail address (trimmed, lower-case).
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Creates an organization.
pub async fn create_org(tx: &mut Tx, name: &str, now: i64) -> Result<Organization> {
    let id = new_id("org_")?;
    sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(name)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(Organization {
        id,
        name: name.to_string(),
        created_at: now,
    })
}

/// One organization.
pub async fn org(db: &Db, id: &str) -> Result<Option<Organization>> {
    let row = sqlx::query("SELECT id, name, created_at FROM organizations WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| {
        Ok(Organization {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .transpose()
}

/// Creates a user; `None` when the e-mail address is taken.
pub async fn create_user(
    tx: &mut Tx,
    email: &str,
    password_hash: &str,
    now: i64,
) -> Result<Option<User>> {
    let id = new_id("usr_")?;
    let done = sqlx::query(
        "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(&id)
    .bind(email)
    .bind(password_hash)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok((done.rows_affected() == 1).then(|| User {
        id,
        email: email.to_string(),
    }))
}

/// A user and its password hash, by e-mail address.
pub async fn user_by_email(db: &Db, email: &str) -> Result<Option<(User, String)>> {
    let row = sqlx::query("SELECT id, email, password_hash FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| {
        Ok((
            User {
                id: r.try_get("id")?,
                email: r.try_get("email")?,
            },
            r.try_get("password_hash")?,
        ))
    })
    .transpose()
}

/// Adds a member (or changes its role).
pub async fn put_member(tx: &mut Tx, org: &str, user: &str, role: Role, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(org)
    .bind(user)
    .bind(role.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The role of a user in an organization.
pub async fn member_role(db: &Db, org: &str, user: &str) -> Result<Option<Role>> {
    let row = sqlx::query("SELECT role FROM members WHERE org_id = $1 AND user_id = $2")
        .bind(org)
        .bind(user)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(role).transpose()
}

/// The organization a user joined first, with the role there.
pub async fn first_membership(db: &Db, user: &str) -> Result<Option<(String, Role)>> {
    let row = sqlx::query(
        "SELECT org_id, role FROM members WHERE user_id = $1 ORDER BY created_at, org_id LIMIT 1",
    )
    .bind(user)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| Ok((r.try_get("org_id")?, role(&r)?)))
        .transpose()
}

/// The members of an organization.
pub async fn members(db: &Db, org: &str) -> Result<Vec<Member>> {
    let rows = sqlx::query(
        "SELECT m.user_id, u.email, m.role, m.created_at FROM members m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 ORDER BY m.created_at, u.email",
    )
    .bind(org)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Member {
                user_id: r.try_get("user_id")?,
                email: r.try_get("email")?,
                role: role(r)?,
                joined_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Takes the organization's row lock for the rest of the transaction, so that concurrent
/// membership changes of one organization run one after the other (on PostgreSQL; SQLite has
/// one writer anyway). False when the organization does not exist.
pub async fn lock_org(tx: &mut Tx, org: &str) -> Result<bool> {
    let done = sqlx::query("UPDATE organizations SET name = name WHERE id = $1")
        .bind(org)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// How many Owners an organization has (inside a transaction, for the last-Owner rule).
pub async fn owner_count(tx: &mut Tx, org: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE org_id = $1 AND role = 'owner'")
            .bind(org)
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Removes a member and its sessions in that organization; whether it was a member.
pub async fn remove_member(tx: &mut Tx, org: &str, user: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM members WHERE org_id = $1 AND user_id = $2")
        .bind(org)
        .bind(user)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE org_id = $1 AND user_id = $2")
        .bind(org)
        .bind(user)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Creates a session; returns the token (the cookie value), stored only hashed.
pub async fn create_session(
    db: &Db,
    user: &str,
    org: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<String> {
    let token = new_secret("igdm_s_")?;
    // expired sessions of the user go when a new one starts
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND expires_at <= $2")
        .bind(user)
        .bind(now)
        .execute(db.pool())
        .await?;
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, org_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash_secret(&token))
    .bind(user)
    .bind(org)
    .bind(now)
    .bind(now + ttl_ms)
    .execute(db.pool())
    .await?;
    Ok(token)
}

/// The user, organization and current role of a live session.
pub async fn session(db: &Db, token: &str, now: i64) -> Result<Option<(String, String, Role)>> {
    let row = sqlx::query(
        "SELECT s.user_id, s.org_id, m.role FROM sessions s \
         JOIN members m ON m.org_id = s.org_id AND m.user_id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(hash_secret(token))
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| Ok((r.try_get("user_id")?, r.try_get("org_id")?, role(&r)?)))
        .transpose()
}

/// Ends a session.
pub async fn delete_session(db: &Db, token: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(hash_secret(token))
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Creates an API key; returns its listing and the key (shown once, stored only hashed).
pub async fn create_api_key(
    db: &Db,
    org: &str,
    name: &str,
    role: Role,
    created_by: Option<&str>,
    now: i64,
) -> Result<(ApiKey, String)> {
    let id = new_id("key_")?;
    let key = new_secret("igdm_k_")?;
    let prefix: String = key.chars().take(12).collect();
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, name, role, key_hash, prefix, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(org)
    .bind(name)
    .bind(role.as_str())
    .bind(hash_secret(&key))
    .bind(&prefix)
    .bind(created_by)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok((
        ApiKey {
            id,
            name: name.to_string(),
            role,
            prefix,
            created_at: now,
            revoked_at: None,
            last_used_at: None,
        },
        key,
    ))
}

/// The id, organization and role of a live (not revoked) API key; marks it used (at most once
/// a minute, so that busy keys do not write on every request).
pub async fn api_key(db: &Db, key: &str, now: i64) -> Result<Option<(String, String, Role)>> {
    let hash = hash_secret(key);
    let row = sqlx::query(
        "SELECT id, org_id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(&hash)
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let found = (r.try_get("id")?, r.try_get("org_id")?, role(&r)?);
    sqlx::query(
        "UPDATE api_keys SET last_used_at = $1 WHERE key_hash = $2 \
         AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(now)
    .bind(&hash)
    .bind(now - 60_000)
    .execute(db.pool())
    .await?;
    Ok(Some(found))
}

fn api_key_row(r: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: role(r)?,
        prefix: r.try_get("prefix")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

/// The API keys of an organization (never the keys).
pub async fn api_keys(db: &Db, org: &str) -> Result<Vec<ApiKey>> {
    let rows = sqlx::query(
        "SELECT id, name, role, prefix, created_at, revoked_at, last_used_at FROM api_keys \
         WHERE org_id = $1 ORDER BY created_at, id",
    )
    .bind(org)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(api_key_row).collect()
}

/// One API key of an organization.
pub async fn api_key_in(db: &Db, org: &str, id: &str) -> Result<Option<ApiKey>> {
    let row = sqlx::query(
        "SELECT id, name, role, prefix, created_at, revoked_at, last_used_at FROM api_keys \
         WHERE org_id = $1 AND id = $2",
    )
    .bind(org)
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(api_key_row).transpose()
}

/// Revokes an API key of an organization.
pub async fn revoke_api_key(db: &Db, org: &str, id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(org)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Creates an invitation; returns it and its token (shown once, stored only hashed).
pub async fn create_invitation(
    db: &Db,
    org: &str,
    email: &str,
    role: Role,
    invited_by: Option<&str>,
    now: i64,
    ttl_ms: i64,
) -> Result<(Invitation, String)> {
    let id = new_id("inv_")?;
    let token = new_secret("igdm_i_")?;
    sqlx::query(
        "INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(org)
    .bind(email)
    .bind(role.as_str())
    .bind(hash_secret(&token))
    .bind(invited_by)
    .bind(now)
    .bind(now + ttl_ms)
    .execute(db.pool())
    .await?;
    Ok((
        Invitation {
            id,
            org_id: org.to_string(),
            email: email.to_string(),
            role,
            expires_at: now + ttl_ms,
            accepted_at: None,
        },
        token,
    ))
}

fn invitation_row(r: &AnyRow) -> Result<Invitation> {
    Ok(Invitation {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        email: r.try_get("email")?,
        role: role(r)?,
        expires_at: r.try_get("expires_at")?,
        accepted_at: r.try_get("accepted_at")?,
    })
}

/// The invitations of an organization (never their tokens).
pub async fn invitations(db: &Db, org: &str) -> Result<Vec<Invitation>> {
    let rows = sqlx::query(
        "SELECT id, org_id, email, role, expires_at, accepted_at FROM invitations \
         WHERE org_id = $1 ORDER BY created_at, id",
    )
    .bind(org)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(invitation_row).collect()
}

/// A pending, unexpired invitation by its token.
pub async fn invitation_by_token(db: &Db, token: &str, now: i64) -> Result<Option<Invitation>> {
    let row = sqlx::query(
        "SELECT id, org_id, email, role, expires_at, accepted_at FROM invitations \
         WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2",
    )
    .bind(hash_secret(token))
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(invitation_row).transpose()
}

/// Marks an invitation accepted; false when it was accepted meanwhile.
pub async fn accept_invitation(tx: &mut Tx, id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE invitations SET accepted_at = $1 WHERE id = $2 AND accepted_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a pending invitation of an organization; whether it existed.
pub async fn delete_invitation(db: &Db, org: &str, id: &str) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM invitations WHERE org_id = $1 AND id = $2 AND accepted_at IS NULL",
    )
    .bind(org)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether an account belongs to an organization.
pub async fn owns_account(
    conn: &mut sqlx::AnyConnection,
    org: &str,
    account: &str,
) -> Result<bool> {
    let row = sqlx::query("SELECT 1 AS one FROM accounts WHERE id = $1 AND org_id = $2")
        .bind(account)
        .bind(org)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_a_salt_and_verify() {
        let a = hash_password("correct horse", 64).unwrap();
        let b = hash_password("correct horse", 64).unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct horsE", &a));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn secrets_are_random_and_hash_to_sha256_hex() {
        let a = new_secret("igdm_k_").unwrap();
        assert_eq!(a.len(), 7 + 64);
        assert_ne!(a, new_secret("igdm_k_").unwrap());
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), a);
        assert_eq!(new_id("org_").unwrap().len(), 4 + 32);
    }
}

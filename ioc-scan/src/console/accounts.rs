//! People and credentials: users with argon2id password hashes, sign-in
//! sessions (cookies) and bearer tokens (API, device, enrollment). Secrets
//! are random 256-bit values handed out once; only their sha256 is stored,
//! so a copy of the database does not let anyone in.
//!
//! A user's credentials end with their password or their account: changing
//! the password or deleting the user removes their sessions and API tokens
//! in the same transaction. There is always an administrator left.

use super::error::{ConsoleError, Result};
use super::tables::{
    Role, SessionRecordV1, TokenKindV1, TokenRecordV1, UserRecordV1, SEQ_TOKEN, SEQ_USER, SESSIONS, TOKENS, USERS,
    USERS_BY_NAME,
};
use crate::store::{next_id, Encoded, Store};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use redb::{ReadableTable, ReadableTableMetadata};
use sha2::{Digest, Sha256};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted (argon2 hashes any length; this bounds the work).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A new random secret: `prefix` + 64 hex digits.
pub fn new_secret(prefix: &str) -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ConsoleError::Internal(format!("no randomness: {e}")))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// What is stored for a secret.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ConsoleError::Internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| ConsoleError::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ConsoleError::Internal(format!("hashing the password: {e}")))
}

fn check_password_rules(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ConsoleError::Invalid(format!("the password must have at least {MIN_PASSWORD_CHARS} characters")));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ConsoleError::Invalid(format!("the password must have at most {MAX_PASSWORD_BYTES} bytes")));
    }
    Ok(())
}

/// A user name: 1 to 64 characters, no control characters or surrounding blanks.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 64 || name.trim() != name || name.chars().any(char::is_control) {
        return Err(ConsoleError::Invalid(format!(
            "{what} must be 1 to 64 characters, without control characters or leading/trailing blanks"
        )));
    }
    Ok(())
}

/// How many users there are.
pub fn user_count(store: &Store) -> Result<u64> {
    let read = store.read()?;
    Ok(read.open_table(USERS)?.len()?)
}

pub fn create_user(store: &Store, name: &str, password: &str, role: Role) -> Result<UserRecordV1> {
    check_name("a user name", name)?;
    check_password_rules(password)?;
    let password_hash = hash_password(password)?;
    let txn = super::write::begin(store)?;
    let user = {
        let mut by_name = txn.open_table(USERS_BY_NAME)?;
        if by_name.get(name)?.is_some() {
            return Err(ConsoleError::Conflict(format!("a user named {name:?} exists")));
        }
        let id = next_id(&txn, SEQ_USER)?;
        let user = UserRecordV1 { id, name: name.to_string(), password_hash, created_at: store.now_millis(), role };
        by_name.insert(name, id)?;
        txn.open_table(USERS)?.insert(id, Encoded::encode(&user))?;
        user
    };
    txn.commit()?;
    Ok(user)
}

/// Sets a user's password and ends their sessions and API tokens: whoever
/// held them (say, with the old password) must sign in again.
pub fn set_password(store: &Store, user_id: u64, password: &str) -> Result<()> {
    check_password_rules(password)?;
    let password_hash = hash_password(password)?;
    let txn = super::write::begin(store)?;
    {
        let mut users = txn.open_table(USERS)?;
        let mut user: UserRecordV1 = match users.get(user_id)? {
            Some(u) => u.value().decode()?,
            None => return Err(ConsoleError::not_found(format_args!("user with id {user_id}"))),
        };
        user.password_hash = password_hash;
        users.insert(user_id, Encoded::encode(&user))?;
    }
    revoke_credentials_of(&txn, user_id)?;
    txn.commit()?;
    Ok(())
}

/// Removes every session and API token of `user_id`.
fn revoke_credentials_of(txn: &redb::WriteTransaction, user_id: u64) -> Result<()> {
    txn.open_table(SESSIONS)?.retain(|_, s| s.decode().map(|s| s.user_id != user_id).unwrap_or(false))?;
    txn.open_table(TOKENS)?.retain(|_, t| match t.decode() {
        Ok(t) => t.kind != TokenKindV1::Api { user_id },
        Err(_) => true,
    })?;
    Ok(())
}

/// How many administrators `users` holds.
fn admin_count(users: &impl ReadableTable<u64, crate::store::Json<UserRecordV1>>) -> Result<usize> {
    let mut n = 0;
    for entry in users.iter()? {
        n += usize::from(entry?.1.value().decode()?.role == Role::Admin);
    }
    Ok(n)
}

/// Gives a user another role; the last administrator keeps theirs.
pub fn set_role(store: &Store, user_id: u64, role: Role) -> Result<UserRecordV1> {
    let txn = super::write::begin(store)?;
    let user = {
        let mut users = txn.open_table(USERS)?;
        let mut user: UserRecordV1 = match users.get(user_id)? {
            Some(u) => u.value().decode()?,
            None => return Err(ConsoleError::not_found(format_args!("user with id {user_id}"))),
        };
        if user.role == Role::Admin && role != Role::Admin && admin_count(&users)? <= 1 {
            return Err(ConsoleError::Conflict(format!("{:?} is the last administrator", user.name)));
        }
        user.role = role;
        users.insert(user_id, Encoded::encode(&user))?;
        user
    };
    txn.commit()?;
    Ok(user)
}

/// Deletes a user with their sessions and API tokens (not the last
/// administrator); returns the record removed.
pub fn delete_user(store: &Store, user_id: u64) -> Result<UserRecordV1> {
    let txn = super::write::begin(store)?;
    let user = {
        let mut users = txn.open_table(USERS)?;
        let user: UserRecordV1 = match users.get(user_id)? {
            Some(u) => u.value().decode()?,
            None => return Err(ConsoleError::not_found(format_args!("user with id {user_id}"))),
        };
        if user.role == Role::Admin && admin_count(&users)? <= 1 {
            return Err(ConsoleError::Conflict(format!("{:?} is the last administrator", user.name)));
        }
        users.remove(user_id)?;
        txn.open_table(USERS_BY_NAME)?.remove(user.name.as_str())?;
        user
    };
    revoke_credentials_of(&txn, user_id)?;
    txn.commit()?;
    Ok(user)
}

pub fn user(store: &Store, id: u64) -> Result<Option<UserRecordV1>> {
    let read = store.read()?;
    let got = read.open_table(USERS)?.get(id)?;
    Ok(got.map(|u| u.value().decode()).transpose()?)
}

pub fn users(store: &Store) -> Result<Vec<UserRecordV1>> {
    let read = store.read()?;
    let table = read.open_table(USERS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        out.push(entry?.1.value().decode()?);
    }
    Ok(out)
}

/// The user whose name and password these are. Unknown names cost as much
/// time as wrong passwords (no telling which names exist).
pub fn check_password(store: &Store, name: &str, password: &str) -> Result<Option<UserRecordV1>> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(None);
    }
    let found = {
        let read = store.read()?;
        let id = read.open_table(USERS_BY_NAME)?.get(name)?.map(|v| v.value());
        match id {
            Some(id) => read.open_table(USERS)?.get(id)?.map(|u| u.value().decode()).transpose()?,
            None => None,
        }
    };
    // The hash of a random password, to spend the same time on unknown names.
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let decoy = DECOY.get_or_init(|| new_secret("").and_then(|p| hash_password(&p)).unwrap_or_default());
    let stored = found.as_ref().map_or(decoy.as_str(), |u| u.password_hash.as_str());
    let ok = match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    };
    Ok(found.filter(|_| ok))
}

/// Opens a session for `user_id`; returns the cookie value.
pub fn new_session(store: &Store, user_id: u64, lifetime: chrono::Duration) -> Result<String> {
    let secret = new_secret("s_")?;
    let now = store.now_millis();
    let session = SessionRecordV1 { user_id, created_at: now, expires_at: now + lifetime.num_milliseconds() };
    let txn = super::write::begin(store)?;
    txn.open_table(SESSIONS)?.insert(secret_hash(&secret).as_str(), Encoded::encode(&session))?;
    txn.commit()?;
    Ok(secret)
}

/// The user of a live session.
pub fn session_user(store: &Store, cookie: &str) -> Result<Option<UserRecordV1>> {
    let read = store.read()?;
    let session: Option<SessionRecordV1> =
        read.open_table(SESSIONS)?.get(secret_hash(cookie).as_str())?.map(|s| s.value().decode()).transpose()?;
    let Some(session) = session.filter(|s| s.expires_at > store.now_millis()) else {
        return Ok(None);
    };
    let got = read.open_table(USERS)?.get(session.user_id)?;
    Ok(got.map(|u| u.value().decode()).transpose()?)
}

pub fn end_session(store: &Store, cookie: &str) -> Result<()> {
    let txn = super::write::begin(store)?;
    txn.open_table(SESSIONS)?.remove(secret_hash(cookie).as_str())?;
    txn.commit()?;
    Ok(())
}

/// Makes a bearer token; returns the secret (shown once) and its record.
pub fn new_token(
    store: &Store,
    kind: TokenKindV1,
    name: &str,
    expires_at: Option<i64>,
) -> Result<(String, TokenRecordV1)> {
    let txn = super::write::begin(store)?;
    let made = insert_token(&txn, store.now_millis(), kind, name, expires_at)?;
    txn.commit()?;
    Ok(made)
}

/// [`new_token`] inside a transaction.
pub(crate) fn insert_token(
    txn: &redb::WriteTransaction,
    now: i64,
    kind: TokenKindV1,
    name: &str,
    expires_at: Option<i64>,
) -> Result<(String, TokenRecordV1)> {
    let prefix = match kind {
        TokenKindV1::Api { .. } => "api_",
        TokenKindV1::Device { .. } => "dev_",
        TokenKindV1::Enrollment { .. } => "enr_",
    };
    let secret = new_secret(prefix)?;
    let id = next_id(txn, SEQ_TOKEN)?;
    let record = TokenRecordV1 { id, kind, name: name.to_string(), created_at: now, expires_at };
    txn.open_table(TOKENS)?.insert(secret_hash(&secret).as_str(), Encoded::encode(&record))?;
    Ok((secret, record))
}

/// What a presented bearer token stands for, if it is known and not expired.
pub fn lookup_token(store: &Store, secret: &str) -> Result<Option<TokenRecordV1>> {
    let read = store.read()?;
    let got: Option<TokenRecordV1> =
        read.open_table(TOKENS)?.get(secret_hash(secret).as_str())?.map(|t| t.value().decode()).transpose()?;
    let now = store.now_millis();
    Ok(got.filter(|t| t.expires_at.is_none_or(|e| e > now)))
}

/// Every token record (never the secrets).
pub fn tokens(store: &Store) -> Result<Vec<TokenRecordV1>> {
    let read = store.read()?;
    let table = read.open_table(TOKENS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        out.push(entry?.1.value().decode()?);
    }
    out.sort_by_key(|t| t.id);
    Ok(out)
}

/// Revokes the token with this id (if `allowed` says so); returns whether one was removed.
pub fn revoke_token(store: &Store, id: u64, allowed: impl Fn(&TokenRecordV1) -> bool) -> Result<bool> {
    let txn = super::write::begin(store)?;
    let mut removed = false;
    {
        let mut table = txn.open_table(TOKENS)?;
        table.retain(|_, t| match t.decode() {
            Ok(t) if t.id == id && allowed(&t) => {
                removed = true;
                false
            }
            _ => true,
        })?;
    }
    txn.commit()?;
    Ok(removed)
}

/// Deletes expired sessions and tokens.
pub fn prune_expired(store: &Store) -> Result<u64> {
    let now = store.now_millis();
    let txn = super::write::begin(store)?;
    let mut n = 0u64;
    {
        txn.open_table(SESSIONS)?.retain(|_, s| {
            let keep = s.decode().map(|s| s.expires_at > now).unwrap_or(false);
            n += u64::from(!keep);
            keep
        })?;
        txn.open_table(TOKENS)?.retain(|_, t| {
            let keep = t.decode().map(|t| t.expires_at.is_none_or(|e| e > now)).unwrap_or(false);
            n += u64::from(!keep);
            keep
        })?;
    }
    txn.commit()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Json, OpenOptions, Record};
    use redb::TableDefinition;
    use serde::{Deserialize, Serialize};

    /// A user as written before roles existed.
    #[derive(Serialize, Deserialize)]
    struct UserBeforeRoles {
        id: u64,
        name: String,
        password_hash: String,
        created_at: i64,
    }
    impl Record for UserBeforeRoles {
        const TYPE_NAME: &'static str = "ioc_scan::console::UserRecordV1";
    }
    const OLD_USERS: TableDefinition<u64, Json<UserBeforeRoles>> = TableDefinition::new("console_users");

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("console.redb"), OpenOptions::default()).unwrap();
        crate::console::prepare(&store).unwrap();
        (dir, store)
    }

    #[test]
    fn users_written_before_roles_read_as_administrators() {
        let (_dir, store) = store();
        let old = UserBeforeRoles { id: 7, name: "old".into(), password_hash: "x".into(), created_at: 1 };
        let txn = crate::console::write::begin(&store).unwrap();
        txn.open_table(OLD_USERS).unwrap().insert(7, Encoded::encode(&old)).unwrap();
        txn.open_table(USERS_BY_NAME).unwrap().insert("old", 7).unwrap();
        txn.commit().unwrap();
        let user = user(&store, 7).unwrap().unwrap();
        assert_eq!((user.name.as_str(), user.role), ("old", Role::Admin));
        // Their record stays readable after a change, now with a role.
        assert_eq!(set_role(&store, 7, Role::Admin).unwrap().role, Role::Admin);
        assert_eq!(users(&store).unwrap().len(), 1);
    }

    #[test]
    fn the_last_administrator_is_neither_deleted_nor_demoted() {
        let (_dir, store) = store();
        let admin = create_user(&store, "admin", "admin password", Role::Admin).unwrap();
        let viewer = create_user(&store, "viewer", "viewer password", Role::Viewer).unwrap();
        assert!(matches!(delete_user(&store, admin.id), Err(ConsoleError::Conflict(_))));
        assert!(matches!(set_role(&store, admin.id, Role::Analyst), Err(ConsoleError::Conflict(_))));
        set_role(&store, viewer.id, Role::Admin).unwrap();
        delete_user(&store, admin.id).unwrap();
        assert!(user(&store, admin.id).unwrap().is_none());
        assert!(check_password(&store, "admin", "admin password").unwrap().is_none());
    }
}

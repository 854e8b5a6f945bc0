//! Signing in and out, users and their roles, API and enrollment tokens.
//! Who may call each route is in the route table ([`super::routes`]); the
//! checks here are those that depend on whose record it is (one's own
//! password and tokens).

use super::JsonBody;
use crate::console::auth::{client_ip, session_set_cookie, CurrentUser, PasswordAttempt};
use crate::console::error::{ConsoleError, Result};
use crate::console::tables::{Role, TokenKindV1, TokenRecordV1};
use crate::console::view::time;
use crate::console::{accounts, AppState};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub struct SignIn {
    username: String,
    password: String,
}

/// The request's parts (for the client address) without consuming the body.
pub struct Peer(Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = ConsoleError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        Ok(Peer(client_ip(parts)))
    }
}

fn user_json(u: &crate::console::tables::UserRecordV1) -> Value {
    json!({ "id": u.id, "name": u.name, "role": u.role, "created_at": time(u.created_at) })
}

/// `POST /api/v1/session`: sign in with user name and password.
pub async fn sign_in(
    State(state): State<AppState>,
    Peer(ip): Peer,
    JsonBody(body): JsonBody<SignIn>,
) -> Result<Response> {
    // Reserved before argon2 runs: parallel guesses cannot all get through.
    let attempt = PasswordAttempt::reserve(&state, ip, &body.username, &body.password)?;
    let (name, password) = (body.username.clone(), body.password);
    let user = state.db(move |s| accounts::check_password(s, &name, &password)).await?;
    let Some(user) = user else {
        return Err(ConsoleError::Unauthorized);
    };
    attempt.succeeded();
    let lifetime = state.config.session_lifetime;
    let id = user.id;
    let cookie = state.db(move |s| accounts::new_session(s, id, lifetime)).await?;
    let set = session_set_cookie(Some(&cookie), state.tls, lifetime.num_seconds());
    Ok(([(header::SET_COOKIE, set)], Json(json!({ "user": user_json(&user) }))).into_response())
}

/// `GET /api/v1/session`: who is signed in.
pub async fn me(user: CurrentUser) -> Json<Value> {
    // The page shows what `user.role` may do.
    Json(json!({ "user": user_json(&user.user), "via": if user.session.is_some() { "session" } else { "token" } }))
}

/// `DELETE /api/v1/session`: sign out.
pub async fn sign_out(State(state): State<AppState>, user: CurrentUser) -> Result<Response> {
    if let Some(cookie) = user.session {
        state.db(move |s| accounts::end_session(s, &cookie)).await?;
    }
    let clear = session_set_cookie(None, state.tls, 0);
    Ok(([(header::SET_COOKIE, clear)], StatusCode::NO_CONTENT).into_response())
}

/// `GET /api/v1/users` (administrators).
pub async fn list_users(State(state): State<AppState>) -> Result<Json<Value>> {
    let users = state.db(accounts::users).await?;
    Ok(Json(json!({ "users": users.iter().map(user_json).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
pub struct NewUser {
    name: String,
    password: String,
    /// None: a viewer (the least a person may do).
    role: Option<Role>,
}

/// `POST /api/v1/users` (administrators).
pub async fn create_user(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<Value>)> {
    let role = body.role.unwrap_or(Role::Viewer);
    let user = state.db(move |s| accounts::create_user(s, &body.name, &body.password, role)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "user": user_json(&user) }))))
}

#[derive(Deserialize)]
pub struct UserPatch {
    role: Role,
}

/// `PATCH /api/v1/users/{id}` (administrators): another role (not for the last administrator).
pub async fn update_user(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    JsonBody(body): JsonBody<UserPatch>,
) -> Result<Json<Value>> {
    let user = state.db(move |s| accounts::set_role(s, id, body.role)).await?;
    Ok(Json(json!({ "user": user_json(&user) })))
}

/// `DELETE /api/v1/users/{id}` (administrators): the user, their sessions
/// and API tokens (not the last administrator).
pub async fn delete_user(State(state): State<AppState>, Path(id): Path<u64>) -> Result<StatusCode> {
    state.db(move |s| accounts::delete_user(s, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct NewPassword {
    password: String,
    /// The current password: needed to change one's own.
    old_password: Option<String>,
}

/// `PUT /api/v1/users/{id}/password`: one's own with the old password, or
/// anyone's by an administrator. Ends the user's sessions and API tokens.
pub async fn set_password(
    State(state): State<AppState>,
    Peer(ip): Peer,
    me: CurrentUser,
    Path(id): Path<u64>,
    JsonBody(body): JsonBody<NewPassword>,
) -> Result<StatusCode> {
    if id == me.user.id {
        // A stolen session or token must not be enough to take the account;
        // the old password is limited like a sign-in.
        let old = body.old_password.unwrap_or_default();
        let attempt = PasswordAttempt::reserve(&state, ip, &me.user.name, &old)?;
        let name = me.user.name.clone();
        let checked = state.db(move |s| accounts::check_password(s, &name, &old)).await?;
        if checked.is_none_or(|u| u.id != id) {
            return Err(ConsoleError::Forbidden(
                "changing your password needs your old password (old_password)".into(),
            ));
        }
        attempt.succeeded();
    } else if me.user.role < Role::Admin {
        return Err(ConsoleError::Forbidden("only an administrator changes another user's password".into()));
    }
    state.db(move |s| accounts::set_password(s, id, &body.password)).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn token_json(t: &TokenRecordV1) -> Value {
    json!({
        "id": t.id,
        "kind": t.kind,
        "name": t.name,
        "created_at": time(t.created_at),
        "expires_at": t.expires_at.map(time),
    })
}

/// Whether `user` may see and revoke `token`: an administrator any but a
/// device's, anyone else their own API tokens.
fn may_manage(user: &CurrentUser, token: &TokenRecordV1) -> bool {
    match token.kind {
        TokenKindV1::Device { .. } => false,
        TokenKindV1::Api { user_id } if user_id == user.user.id => true,
        _ => user.user.role == Role::Admin,
    }
}

/// `GET /api/v1/tokens` (API tokens) and `/api/v1/enrollment-tokens`: never the secrets.
pub async fn list_tokens(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Value>> {
    let tokens = state.db(accounts::tokens).await?;
    let (api, enrollment): (Vec<_>, Vec<_>) =
        tokens.iter().filter(|t| may_manage(&user, t)).partition(|t| matches!(t.kind, TokenKindV1::Api { .. }));
    Ok(Json(json!({
        "api_tokens": api.into_iter().map(token_json).collect::<Vec<_>>(),
        "enrollment_tokens": enrollment.into_iter().map(token_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, Default)]
pub struct NewToken {
    #[serde(default)]
    name: String,
    /// Days until it expires (none: never).
    expires_in_days: Option<u32>,
}

fn expiry(state: &AppState, hours: Option<u64>) -> Option<i64> {
    hours.map(|h| state.store.now_millis() + (h.min(24 * 3660) as i64) * 3_600_000)
}

/// `POST /api/v1/tokens`: an API token for the caller (shown once).
pub async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<NewToken>,
) -> Result<(StatusCode, Json<Value>)> {
    let expires = expiry(&state, body.expires_in_days.map(|d| d as u64 * 24));
    let kind = TokenKindV1::Api { user_id: user.user.id };
    let (secret, record) = state.db(move |s| accounts::new_token(s, kind, &body.name, expires)).await?;
    let mut v = token_json(&record);
    v["token"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Deserialize, Default)]
pub struct NewEnrollmentToken {
    #[serde(default)]
    name: String,
    group_id: Option<u64>,
    /// How many devices may enroll with it (none: any number).
    uses: Option<u32>,
    expires_in_hours: Option<u64>,
}

/// `POST /api/v1/enrollment-tokens`: a token devices enroll with (shown once).
pub async fn create_enrollment_token(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewEnrollmentToken>,
) -> Result<(StatusCode, Json<Value>)> {
    if body.uses == Some(0) {
        return Err(ConsoleError::Invalid("uses must be at least 1".into()));
    }
    let expires = expiry(&state, body.expires_in_hours);
    let kind = TokenKindV1::Enrollment { group_id: body.group_id, uses_left: body.uses };
    let (secret, record) = state.db(move |s| accounts::new_token(s, kind, &body.name, expires)).await?;
    let mut v = token_json(&record);
    v["token"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)))
}

/// `DELETE /api/v1/tokens/{id}`: revokes one's own API token, or (an
/// administrator) any API or enrollment token. Device tokens go with their device.
pub async fn revoke_token(State(state): State<AppState>, user: CurrentUser, Path(id): Path<u64>) -> Result<StatusCode> {
    let removed = state.db(move |s| accounts::revoke_token(s, id, |t| may_manage(&user, t))).await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ConsoleError::not_found(format_args!("token with id {id}")))
    }
}

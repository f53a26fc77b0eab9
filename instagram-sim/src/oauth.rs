//! Instagram Login: the authorize page, the code exchange, the long-lived exchange and refresh.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::error::{oauth_error, GraphFailure};
use crate::graph::{long_lived_seconds, Answer, GraphRequest};
use crate::state::{all_scopes, AuthCode, State, DAY_MS, HOUR_MS};

/// The outcome of `GET /oauth/authorize`: where to redirect, or why not (a 400 page).
pub(crate) fn authorize(
    state: &mut State,
    params: &HashMap<String, String>,
) -> Result<String, String> {
    let client_id = params.get("client_id").map(String::as_str).unwrap_or("");
    if client_id != state.app_id {
        return Err(format!(
            "Invalid app ID: `{client_id}` is not this simulator's app ({}).",
            state.app_id
        ));
    }
    let redirect = params.get("redirect_uri").cloned().unwrap_or_default();
    if url::Url::parse(&redirect).is_err() {
        return Err("redirect_uri is missing or not an absolute URL.".to_owned());
    }
    if !state.redirect_uris.is_empty() && !state.redirect_uris.contains(&redirect) {
        return Err(
            "Invalid redirect_uri: it does not match the app's configured redirect URIs."
                .to_owned(),
        );
    }
    if params.get("response_type").map(String::as_str) != Some("code") {
        return Err("response_type must be `code`.".to_owned());
    }
    let state_param = params.get("state").cloned();
    let separator = if redirect.contains('?') { '&' } else { '?' };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if params.get("deny").is_some_and(|d| d == "1" || d == "true") {
        query
            .append_pair("error", "access_denied")
            .append_pair("error_reason", "user_denied")
            .append_pair("error_description", "The user denied your request");
        if let Some(s) = &state_param {
            query.append_pair("state", s);
        }
        return Ok(format!("{redirect}{separator}{}", query.finish()));
    }
    let account = match params.get("account") {
        Some(key) => state.find_account(key).ok_or_else(|| {
            format!("No simulated account `{key}`; create it with POST /_sim/accounts.")
        })?,
        None => state.accounts.keys().next().cloned().ok_or_else(|| {
            "No simulated account exists; create one with POST /_sim/accounts first.".to_owned()
        })?,
    };
    let requested: Vec<String> = params
        .get("scope")
        .map(|s| {
            s.split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let known = all_scopes();
    let scopes: Vec<String> = requested
        .into_iter()
        .filter(|s| known.contains(s))
        .collect();
    state.ids.code += 1;
    let salt = state.rng.next_u64();
    let code = format!("AQBsim{:06}{salt:016x}", state.ids.code);
    let expires_ms = state.now().saturating_add(HOUR_MS);
    state.codes.insert(
        code.clone(),
        AuthCode {
            account: account.clone(),
            redirect_uri: redirect.clone(),
            scopes,
            expires_ms,
        },
    );
    if let Some(account) = state.accounts.get_mut(&account) {
        account.authorized = true;
    }
    query.append_pair("code", &code);
    if let Some(s) = &state_param {
        query.append_pair("state", s);
    }
    Ok(format!("{redirect}{separator}{}#_", query.finish()))
}

/// `POST /oauth/access_token`: the code exchange, answering the wrapped `data` shape or the
/// flat OAuth error.
pub(crate) fn exchange_code(
    state: &mut State,
    form: &HashMap<String, String>,
) -> Result<Value, Value> {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != state.app_id {
        return Err(oauth_error("Invalid platform app"));
    }
    if get("client_secret") != state.app_secret {
        return Err(oauth_error("Error validating client secret."));
    }
    if get("grant_type") != "authorization_code" {
        return Err(oauth_error("Invalid grant_type: use authorization_code"));
    }
    let code = get("code").trim_end_matches("#_");
    let now = state.now();
    let Some(entry) = state.codes.remove(code) else {
        return Err(oauth_error(
            "Matching code was not found or was already used",
        ));
    };
    if now > entry.expires_ms {
        return Err(oauth_error("This authorization code has expired."));
    }
    if get("redirect_uri") != entry.redirect_uri {
        return Err(oauth_error(
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
        ));
    }
    let (token, _) = state.issue_token(&entry.account, entry.scopes.clone(), false);
    let user_id = state
        .accounts
        .get(&entry.account)
        .map(|a| a.app_scoped_id.clone())
        .unwrap_or_default();
    Ok(json!({ "data": [{
        "access_token": token,
        "user_id": user_id,
        "permissions": entry.scopes.join(","),
    }]}))
}

/// `GET /access_token?grant_type=ig_exchange_token&client_secret=`: short-lived to long-lived.
pub(crate) fn long_lived(state: &mut State, req: &GraphRequest) -> Result<Answer, GraphFailure> {
    if req.params.get("grant_type").map(String::as_str) != Some("ig_exchange_token") {
        return Err(GraphFailure::param("grant_type must be ig_exchange_token"));
    }
    if req.params.get("client_secret") != Some(&state.app_secret) {
        return Err(GraphFailure::new(
            101,
            None,
            "Error validating client secret.",
        ));
    }
    let caller = state.check_token(req.token.as_deref())?;
    let (token, _) = state.issue_token(&caller.account, caller.scopes.clone(), true);
    Ok(Answer {
        body: json!({ "access_token": token, "token_type": "bearer", "expires_in": long_lived_seconds() }),
        account: Some(caller.account),
    })
}

/// `GET /refresh_access_token?grant_type=ig_refresh_token`: a long-lived token at least 24
/// hours old gets a new 60-day token.
pub(crate) fn refresh(state: &mut State, req: &GraphRequest) -> Result<Answer, GraphFailure> {
    if req.params.get("grant_type").map(String::as_str) != Some("ig_refresh_token") {
        return Err(GraphFailure::param("grant_type must be ig_refresh_token"));
    }
    let caller = state.check_token(req.token.as_deref())?;
    let token = req.token.clone().unwrap_or_default();
    let (long_lived, issued) = state
        .tokens
        .get(&token)
        .map(|t| (t.long_lived, t.issued_ms))
        .unwrap_or((false, 0));
    if !long_lived {
        return Err(GraphFailure::param(
            "only long-lived tokens can be refreshed; exchange it first",
        ));
    }
    if state.now().saturating_sub(issued) < DAY_MS {
        return Err(GraphFailure::param(
            "the token is younger than 24 hours and cannot be refreshed yet",
        ));
    }
    let (new_token, _) = state.issue_token(&caller.account, caller.scopes.clone(), true);
    Ok(Answer {
        body: json!({
            "access_token": new_token,
            "token_type": "bearer",
            "expires_in": long_lived_seconds(),
            "permissions": caller.scopes.join(","),
        }),
        account: Some(caller.account),
    })
}

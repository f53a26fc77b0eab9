//! The Graph API side: request parsing, token and scope checks, and every endpoint
//! `instagram-graph` calls (account, media, comments, Send API, conversations, profiles,
//! messenger profile, webhook subscription, token exchange and refresh).

use std::collections::HashMap;

use axum::http::{HeaderMap, Method};
use serde_json::{json, Map, Value};

use crate::error::GraphFailure;
use crate::model::{PublicReply, SentKind, SentMessage};
use crate::state::{iso, to_time, Author, Bucket, Caller, State, DAY_MS, LONG_LIVED_MS};
use crate::webhook::{messaging_entry, notify};

pub(crate) const BASIC: &str = "instagram_business_basic";
pub(crate) const MESSAGES: &str = "instagram_business_manage_messages";
pub(crate) const COMMENTS: &str = "instagram_business_manage_comments";

/// A parsed Graph request.
#[derive(Debug, Clone)]
pub(crate) struct GraphRequest {
    pub method: Method,
    /// The path after the version prefix, split and decoded.
    pub segments: Vec<String>,
    /// The raw path (for `paging.next`).
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Query and form parameters (query first).
    pub params: HashMap<String, String>,
    pub json: Option<Value>,
    pub token: Option<String>,
}

impl GraphRequest {
    pub fn parse(
        method: Method,
        path: &str,
        raw_query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Self {
        let query: Vec<(String, String)> = raw_query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let mut params: HashMap<String, String> = HashMap::new();
        for (k, v) in &query {
            params.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut json = None;
        if content_type.contains("json") || body.first() == Some(&b'{') {
            json = serde_json::from_slice::<Value>(body).ok();
        } else if !body.is_empty() {
            for (k, v) in url::form_urlencoded::parse(body) {
                params
                    .entry(k.into_owned())
                    .or_insert_with(|| v.into_owned());
            }
        }
        let mut segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        if segments.first().is_some_and(|s| is_version(s)) {
            segments.remove(0);
        }
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|v| v.trim().to_owned());
        let token = bearer.or_else(|| params.get("access_token").cloned());
        Self {
            method,
            segments,
            path: path.to_owned(),
            query,
            params,
            json,
            token,
        }
    }

    fn param(&self, key: &str) -> Option<String> {
        if let Some(v) = self.params.get(key) {
            return Some(v.clone());
        }
        match self.json.as_ref().and_then(|j| j.get(key)) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        }
    }

    /// A JSON value from the JSON body, or a form/query field holding JSON text.
    fn value(&self, key: &str) -> Option<Value> {
        if let Some(v) = self.json.as_ref().and_then(|j| j.get(key)) {
            return Some(v.clone());
        }
        self.params
            .get(key)
            .map(|text| serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())))
    }
}

fn is_version(segment: &str) -> bool {
    segment.len() > 1
        && segment.starts_with('v')
        && segment[1..].chars().all(|c| c.is_ascii_digit() || c == '.')
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_owned())
}

/// A successful answer: the body and the account whose usage headers to attach.
pub(crate) struct Answer {
    pub body: Value,
    pub account: Option<String>,
}

fn answer(body: Value, caller: &Caller) -> Result<Answer, GraphFailure> {
    Ok(Answer {
        body,
        account: Some(caller.account.clone()),
    })
}

fn need(caller: &Caller, scopes: &[&str]) -> Result<(), GraphFailure> {
    for scope in scopes {
        if !caller.scopes.iter().any(|s| s == scope) {
            return Err(GraphFailure::missing_scope(scope));
        }
    }
    Ok(())
}

/// The graph objects a node id can name.
enum Node {
    Account(String),
    Media(String),
    Comment(String),
    Conversation(String),
    Message(String),
    Person(String),
}

fn resolve(
    state: &State,
    caller: &Caller,
    node: &str,
    method: &Method,
) -> Result<Node, GraphFailure> {
    let missing = || GraphFailure::no_object(node, method.as_str());
    if node == "me" {
        return Ok(Node::Account(caller.account.clone()));
    }
    if state.accounts.contains_key(node) {
        return if node == caller.account {
            Ok(Node::Account(node.to_owned()))
        } else {
            Err(missing())
        };
    }
    if let Some(media) = state.media.get(node) {
        return if media.owner == caller.account {
            Ok(Node::Media(node.to_owned()))
        } else {
            Err(missing())
        };
    }
    if let Some(comment) = state.comments.get(node) {
        let owner = state.media.get(&comment.media).map(|m| m.owner.as_str());
        return if owner == Some(caller.account.as_str()) && !comment.deleted {
            Ok(Node::Comment(node.to_owned()))
        } else {
            Err(missing())
        };
    }
    if let Some(conv) = state.conversations.get(node) {
        return if conv.account == caller.account {
            Ok(Node::Conversation(node.to_owned()))
        } else {
            Err(missing())
        };
    }
    if let Some(message) = state.messages.get(node) {
        let owner = state
            .conversations
            .get(&message.conversation)
            .map(|c| c.account.as_str());
        return if owner == Some(caller.account.as_str()) {
            Ok(Node::Message(node.to_owned()))
        } else {
            Err(missing())
        };
    }
    if let Some((_, account)) = state.igsids.get(node) {
        return if *account == caller.account {
            Ok(Node::Person(node.to_owned()))
        } else {
            Err(missing())
        };
    }
    Err(missing())
}

/// The top-level names of a `fields` parameter (`a,b{c,d},e.limit(3)` -> a, b, e).
fn field_names(fields: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for c in fields.chars() {
        match c {
            '{' | '(' => depth += 1,
            '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                names.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    names.push(current);
    names
        .into_iter()
        .map(|n| {
            n.split(['{', '.', '('])
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// Keeps the requested fields of `full` (always `id` when it has one); Meta's default for
/// nodes without `fields` is `id` alone.
fn select(full: Map<String, Value>, fields: Option<&str>) -> Value {
    let names = fields.map(field_names).unwrap_or_default();
    let mut out = Map::new();
    if let Some(id) = full.get("id") {
        out.insert("id".into(), id.clone());
    }
    for name in names {
        if let Some(value) = full.get(&name) {
            if !value.is_null() {
                out.insert(name, value.clone());
            }
        }
    }
    Value::Object(out)
}

/// One page of `items` with cursor paging (the cursor is the offset).
fn page(
    state: &State,
    req: &GraphRequest,
    items: Vec<Value>,
    max: Option<usize>,
) -> Result<Value, GraphFailure> {
    let limit = match req.param("limit") {
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| GraphFailure::param("the limit parameter must be a positive number"))?,
        None => 25,
    };
    if let Some(max) = max {
        if limit > max {
            return Err(GraphFailure::param(format!(
                "the limit parameter must be at most {max} for this edge"
            )));
        }
    }
    let limit = limit.max(1);
    let start = match req.param("after") {
        Some(cursor) => cursor
            .strip_prefix("c")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                GraphFailure::param("the `after` cursor is invalid; use one from paging.cursors")
            })?,
        None => 0,
    };
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    let end = start + data.len();
    let mut paging =
        json!({ "cursors": { "before": format!("c{start}"), "after": format!("c{end}") } });
    if end < total {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &req.query {
            if k != "after" && k != "access_token" {
                query.append_pair(k, v);
            }
        }
        query.append_pair("after", &format!("c{end}"));
        paging["next"] = json!(format!("{}{}?{}", state.base_url, req.path, query.finish()));
    }
    Ok(json!({ "data": data, "paging": paging }))
}

/// Handles one Graph call with the state locked.
pub(crate) fn handle(state: &mut State, req: &GraphRequest) -> Result<Answer, GraphFailure> {
    let segments: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["access_token"] => return crate::oauth::long_lived(state, req),
        ["refresh_access_token"] => return crate::oauth::refresh(state, req),
        [] => return Err(GraphFailure::param("name a node, e.g. /v25.0/me")),
        _ => {}
    }
    let caller = state.check_token(req.token.as_deref())?;
    check_proof(state, req)?;
    let method = &req.method;
    let fields = req.param("fields");
    let fields = fields.as_deref();
    match segments.as_slice() {
        [node] => match resolve(state, &caller, node, method)? {
            Node::Account(id) if *method == Method::GET => {
                need(&caller, &[BASIC])?;
                answer(account_json(state, &id, fields), &caller)
            }
            Node::Media(id) if *method == Method::GET => {
                need(&caller, &[BASIC])?;
                answer(select(media_map(state, &id), fields), &caller)
            }
            Node::Media(id) if *method == Method::POST => {
                need(&caller, &[BASIC])?;
                let enabled = flag(req, "comment_enabled")?;
                if let Some(media) = state.media.get_mut(&id) {
                    media.comments_enabled = enabled;
                }
                answer(json!({ "success": true }), &caller)
            }
            Node::Comment(id) if *method == Method::GET => {
                need(&caller, &[BASIC, COMMENTS])?;
                answer(
                    select(comment_map(state, &id, &caller.account), fields),
                    &caller,
                )
            }
            Node::Comment(id) if *method == Method::POST => {
                need(&caller, &[BASIC, COMMENTS])?;
                let hide = flag(req, "hide")?;
                if let Some(comment) = state.comments.get_mut(&id) {
                    comment.hidden = hide;
                }
                answer(json!({ "success": true }), &caller)
            }
            Node::Comment(id) if *method == Method::DELETE => {
                need(&caller, &[BASIC, COMMENTS])?;
                if let Some(comment) = state.comments.get_mut(&id) {
                    comment.deleted = true;
                }
                answer(json!({ "success": true }), &caller)
            }
            Node::Conversation(id) if *method == Method::GET => {
                need(&caller, &[BASIC, MESSAGES])?;
                state.take_rate(&caller.account, Bucket::Conversations)?;
                answer(conversation_json(state, &id, fields), &caller)
            }
            Node::Message(id) if *method == Method::GET => {
                need(&caller, &[BASIC, MESSAGES])?;
                state.take_rate(&caller.account, Bucket::Conversations)?;
                answer(message_json(state, &id, fields)?, &caller)
            }
            Node::Person(igsid) if *method == Method::GET => {
                need(&caller, &[BASIC, MESSAGES])?;
                answer(
                    profile_json(state, &igsid, &caller.account, fields)?,
                    &caller,
                )
            }
            _ => Err(GraphFailure::no_object(node, method.as_str())),
        },
        [node, edge] => {
            let target = resolve(state, &caller, node, method)?;
            match (target, *edge) {
                (Node::Account(id), "media") if *method == Method::GET => {
                    need(&caller, &[BASIC])?;
                    let ids: Vec<String> = state
                        .accounts
                        .get(&id)
                        .map(|a| a.media.iter().rev().cloned().collect())
                        .unwrap_or_default();
                    let items = ids
                        .iter()
                        .map(|m| select(media_map(state, m), fields))
                        .collect();
                    answer(page(state, req, items, None)?, &caller)
                }
                (Node::Account(_), "messages") if *method == Method::POST => {
                    let body = send(state, &caller, req)?;
                    answer(body, &caller)
                }
                (Node::Account(id), "conversations") if *method == Method::GET => {
                    need(&caller, &[BASIC, MESSAGES])?;
                    state.take_rate(&caller.account, Bucket::Conversations)?;
                    let user = req.param("user_id");
                    let mut convs: Vec<_> = state
                        .conversations
                        .values()
                        .filter(|c| c.account == id)
                        .filter(|c| user.as_deref().is_none_or(|u| c.igsid == u))
                        .collect();
                    convs.sort_by(|a, b| b.updated_ms.cmp(&a.updated_ms).then(b.id.cmp(&a.id)));
                    let items = convs
                        .iter()
                        .map(|c| {
                            let mut map = Map::new();
                            map.insert("id".into(), json!(c.id));
                            map.insert("updated_time".into(), json!(iso(c.updated_ms)));
                            map.insert("participants".into(), participants(state, c));
                            let wanted = fields.unwrap_or("updated_time");
                            select(map, Some(wanted))
                        })
                        .collect();
                    answer(page(state, req, items, None)?, &caller)
                }
                (Node::Account(id), "messenger_profile") => {
                    need(&caller, &[BASIC, MESSAGES])?;
                    answer(messenger_profile(state, &id, req)?, &caller)
                }
                (Node::Account(id), "subscribed_apps") => {
                    need(&caller, &[BASIC])?;
                    answer(subscribed_apps(state, &id, req)?, &caller)
                }
                (Node::Media(id), "children") if *method == Method::GET => {
                    need(&caller, &[BASIC])?;
                    let children = state
                        .media
                        .get(&id)
                        .map(|m| m.children.clone())
                        .unwrap_or_default();
                    let items = children
                        .iter()
                        .map(|c| select(media_map(state, c), fields))
                        .collect();
                    answer(page(state, req, items, None)?, &caller)
                }
                (Node::Media(id), "comments") if *method == Method::GET => {
                    need(&caller, &[BASIC, COMMENTS])?;
                    let mut list: Vec<_> = state
                        .comments
                        .values()
                        .filter(|c| c.media == id && c.parent.is_none() && !c.deleted)
                        .map(|c| (c.created_ms, c.id.clone()))
                        .collect();
                    list.sort_by(|a, b| b.cmp(a));
                    let items = list
                        .iter()
                        .map(|(_, c)| select(comment_map(state, c, &caller.account), fields))
                        .collect();
                    answer(page(state, req, items, Some(50))?, &caller)
                }
                (Node::Comment(id), "replies") if *method == Method::GET => {
                    need(&caller, &[BASIC, COMMENTS])?;
                    let mut list: Vec<_> = state
                        .comments
                        .values()
                        .filter(|c| c.parent.as_deref() == Some(id.as_str()) && !c.deleted)
                        .map(|c| (c.created_ms, c.id.clone()))
                        .collect();
                    list.sort();
                    let items = list
                        .iter()
                        .map(|(_, c)| select(comment_map(state, c, &caller.account), fields))
                        .collect();
                    answer(page(state, req, items, Some(50))?, &caller)
                }
                (Node::Comment(id), "replies") if *method == Method::POST => {
                    need(&caller, &[BASIC, COMMENTS])?;
                    let text = req.param("message").unwrap_or_default();
                    if text.trim().is_empty() {
                        return Err(GraphFailure::param("the parameter message is required"));
                    }
                    let reply = public_reply(state, &caller.account, &id, text);
                    answer(json!({ "id": reply }), &caller)
                }
                _ => Err(GraphFailure::no_object(node, method.as_str())),
            }
        }
        _ => Err(GraphFailure::param(format!(
            "unknown path components: {}",
            req.segments.join("/")
        ))),
    }
}

/// Checks `appsecret_proof` when the caller sends one: the hex HMAC-SHA256 of the token (or
/// of `token|appsecret_time`) keyed with the app secret. The 5-minute validity of the
/// timestamped form is not checked (the simulated clock may be frozen).
fn check_proof(state: &State, req: &GraphRequest) -> Result<(), GraphFailure> {
    let Some(proof) = req.params.get("appsecret_proof") else {
        return Ok(());
    };
    let token = req.token.clone().unwrap_or_default();
    let message = match req.params.get("appsecret_time") {
        Some(time) => format!("{token}|{time}"),
        None => token,
    };
    let expected = webhook_verify::meta::sign(state.app_secret.as_bytes(), message.as_bytes())
        .map(|s| s.to_string())
        .unwrap_or_default();
    if expected.strip_prefix("sha256=") == Some(proof.to_ascii_lowercase().as_str()) {
        Ok(())
    } else {
        let mut failure = GraphFailure::new(
            100,
            None,
            "Invalid appsecret_proof provided in the API argument",
        );
        failure.error_type = "GraphMethodException";
        Err(failure)
    }
}

fn flag(req: &GraphRequest, key: &str) -> Result<bool, GraphFailure> {
    match req.param(key).as_deref() {
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        _ => Err(GraphFailure::param(format!(
            "the parameter {key} must be true or false"
        ))),
    }
}

fn account_json(state: &State, id: &str, fields: Option<&str>) -> Value {
    let Some(account) = state.accounts.get(id) else {
        return json!({});
    };
    let mut map = Map::new();
    map.insert("id".into(), json!(account.app_scoped_id));
    map.insert("user_id".into(), json!(account.ig_id));
    map.insert("username".into(), json!(account.username));
    map.insert("name".into(), json!(account.name));
    map.insert("account_type".into(), json!("BUSINESS"));
    map.insert(
        "profile_picture_url".into(),
        json!(format!(
            "https://scontent.sim.invalid/profile/{}.jpg",
            account.ig_id
        )),
    );
    let followers = state.people.values().filter(|p| p.follows_business).count();
    map.insert("followers_count".into(), json!(followers));
    map.insert("follows_count".into(), json!(0));
    map.insert("media_count".into(), json!(account.media.len()));
    map.insert("biography".into(), json!(""));
    select(map, Some(fields.unwrap_or("id")))
}

fn media_map(state: &State, id: &str) -> Map<String, Value> {
    let mut map = Map::new();
    let Some(media) = state.media.get(id) else {
        return map;
    };
    let username = state
        .accounts
        .get(&media.owner)
        .map(|a| a.username.clone())
        .unwrap_or_default();
    map.insert("id".into(), json!(media.id));
    if !media.child {
        map.insert("caption".into(), json!(media.caption));
        map.insert(
            "media_product_type".into(),
            json!(media.kind.product_type()),
        );
        map.insert(
            "permalink".into(),
            json!(format!("https://www.instagram.com/p/{}/", media.shortcode)),
        );
        map.insert("shortcode".into(), json!(media.shortcode));
        let comments = state
            .comments
            .values()
            .filter(|c| c.media == media.id && !c.deleted)
            .count();
        map.insert("comments_count".into(), json!(comments));
        map.insert("like_count".into(), json!(0));
        map.insert("is_comment_enabled".into(), json!(media.comments_enabled));
        map.insert("owner".into(), json!({ "id": media.owner }));
        if !media.children.is_empty() {
            let data: Vec<Value> = media.children.iter().map(|c| json!({ "id": c })).collect();
            map.insert("children".into(), json!({ "data": data }));
        }
    }
    let media_type = if media.child {
        "IMAGE"
    } else {
        media.kind.media_type()
    };
    map.insert("media_type".into(), json!(media_type));
    if media_type != "CAROUSEL_ALBUM" {
        map.insert(
            "media_url".into(),
            json!(format!(
                "https://scontent.sim.invalid/media/{}.jpg",
                media.id
            )),
        );
    }
    if media_type == "VIDEO" {
        map.insert(
            "thumbnail_url".into(),
            json!(format!(
                "https://scontent.sim.invalid/thumb/{}.jpg",
                media.id
            )),
        );
    }
    map.insert("timestamp".into(), json!(iso(media.created_ms)));
    map.insert("username".into(), json!(username));
    map
}

fn comment_map(state: &State, id: &str, account: &str) -> Map<String, Value> {
    let mut map = Map::new();
    let Some(comment) = state.comments.get(id) else {
        return map;
    };
    let username = state.author_username(&comment.author);
    let from_id = match &comment.author {
        Author::Person(name) => state
            .people
            .get(name)
            .and_then(|p| p.igsids.get(account))
            .cloned()
            .unwrap_or_default(),
        Author::Account(ig) => ig.clone(),
    };
    map.insert("id".into(), json!(comment.id));
    map.insert("text".into(), json!(comment.text));
    map.insert("timestamp".into(), json!(iso(comment.created_ms)));
    map.insert("username".into(), json!(username));
    map.insert(
        "from".into(),
        json!({ "id": from_id, "username": username }),
    );
    map.insert("hidden".into(), json!(comment.hidden));
    map.insert("like_count".into(), json!(0));
    if let Some(parent) = &comment.parent {
        map.insert("parent_id".into(), json!(parent));
    }
    let product = state
        .media
        .get(&comment.media)
        .map(|m| m.kind.product_type())
        .unwrap_or("FEED");
    map.insert(
        "media".into(),
        json!({ "id": comment.media, "media_product_type": product }),
    );
    let replies: Vec<Value> = state
        .comments
        .values()
        .filter(|c| c.parent.as_deref() == Some(id) && !c.deleted)
        .map(|c| json!({ "id": c.id, "text": c.text, "timestamp": iso(c.created_ms), "username": state.author_username(&c.author) }))
        .collect();
    map.insert("replies".into(), json!({ "data": replies }));
    map
}

fn participants(state: &State, conv: &crate::state::Conversation) -> Value {
    let account = state.accounts.get(&conv.account);
    json!({ "data": [
        { "id": conv.account, "username": account.map(|a| a.username.clone()) },
        { "id": conv.igsid, "username": conv.person },
    ]})
}

fn conversation_json(state: &State, id: &str, fields: Option<&str>) -> Value {
    let Some(conv) = state.conversations.get(id) else {
        return json!({});
    };
    let mut map = Map::new();
    map.insert("id".into(), json!(conv.id));
    map.insert("updated_time".into(), json!(iso(conv.updated_ms)));
    map.insert("participants".into(), participants(state, conv));
    let data: Vec<Value> = conv
        .messages
        .iter()
        .rev()
        .filter_map(|mid| state.messages.get(mid))
        .filter(|m| !m.deleted)
        .map(|m| json!({ "id": m.mid, "created_time": iso(m.created_ms) }))
        .collect();
    map.insert("messages".into(), json!({ "data": data }));
    select(map, fields)
}

fn message_json(state: &State, id: &str, fields: Option<&str>) -> Result<Value, GraphFailure> {
    let deleted = || {
        GraphFailure::param(format!(
        "the message {id} was deleted or is older than the 20 most recent messages of its conversation"
    ))
    };
    let message = state.messages.get(id).ok_or_else(deleted)?;
    let conv = state
        .conversations
        .get(&message.conversation)
        .ok_or_else(deleted)?;
    let recent: Vec<&String> = conv
        .messages
        .iter()
        .rev()
        .filter(|m| state.messages.get(*m).is_some_and(|m| !m.deleted))
        .take(20)
        .collect();
    if message.deleted || !recent.iter().any(|m| **m == message.mid) {
        return Err(deleted());
    }
    let account_username = state
        .accounts
        .get(&conv.account)
        .map(|a| a.username.clone());
    let business = json!({ "id": conv.account, "username": account_username });
    let person = json!({ "id": conv.igsid, "username": conv.person });
    let (from, to) = if message.from_account {
        (business, person)
    } else {
        (person, business)
    };
    let mut map = Map::new();
    map.insert("id".into(), json!(message.mid));
    map.insert("created_time".into(), json!(iso(message.created_ms)));
    map.insert("from".into(), from);
    map.insert("to".into(), json!({ "data": [to] }));
    map.insert(
        "message".into(),
        json!(message.text.clone().unwrap_or_default()),
    );
    Ok(select(map, fields))
}

fn profile_json(
    state: &State,
    igsid: &str,
    account: &str,
    fields: Option<&str>,
) -> Result<Value, GraphFailure> {
    let person = state
        .igsids
        .get(igsid)
        .and_then(|(name, _)| state.people.get(name))
        .ok_or_else(|| GraphFailure::no_object(igsid, "GET"))?;
    if !person.consented.contains(account) {
        return Err(GraphFailure::new(
            230,
            None,
            "(#230) User consent is required to access user profile",
        ));
    }
    let mut map = Map::new();
    map.insert("id".into(), json!(igsid));
    map.insert("name".into(), json!(person.name));
    map.insert("username".into(), json!(person.username));
    map.insert(
        "profile_pic".into(),
        json!(format!("https://scontent.sim.invalid/profile/{igsid}.jpg")),
    );
    map.insert("follower_count".into(), json!(person.follower_count));
    map.insert(
        "is_user_follow_business".into(),
        json!(person.follows_business),
    );
    map.insert(
        "is_business_follow_user".into(),
        json!(person.followed_by_business),
    );
    map.insert("is_verified_user".into(), json!(person.verified));
    Ok(select(map, fields))
}

fn messenger_profile(
    state: &mut State,
    id: &str,
    req: &GraphRequest,
) -> Result<Value, GraphFailure> {
    let Some(account) = state.accounts.get_mut(id) else {
        return Err(GraphFailure::no_object(id, "GET"));
    };
    match req.method {
        Method::GET => {
            let names = req
                .param("fields")
                .map(|f| field_names(&f))
                .unwrap_or_default();
            let mut data = Vec::new();
            if names.iter().any(|n| n == "ice_breakers") {
                data.extend(account.ice_breakers.iter().cloned());
            }
            if names.iter().any(|n| n == "persistent_menu") && !account.persistent_menu.is_empty() {
                data.push(json!({ "persistent_menu": account.persistent_menu }));
            }
            Ok(json!({ "data": data }))
        }
        Method::POST => {
            let ice = req.value("ice_breakers");
            let menu = req.value("persistent_menu");
            if ice.is_none() && menu.is_none() {
                return Err(GraphFailure::param("give ice_breakers or persistent_menu"));
            }
            if let Some(ice) = ice {
                let sets = ice.as_array().cloned().unwrap_or_default();
                for set in &sets {
                    let count = set
                        .get("call_to_actions")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    if !(1..=4).contains(&count) {
                        return Err(GraphFailure::param(format!(
                            "ice breakers take 1 to 4 questions per locale, got {count}"
                        )));
                    }
                }
                account.ice_breakers = sets;
            }
            if let Some(menu) = menu {
                account.persistent_menu = menu.as_array().cloned().unwrap_or_default();
            }
            Ok(json!({ "success": true }))
        }
        Method::DELETE => {
            let fields = req
                .value("fields")
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default();
            if fields.is_empty() {
                return Err(GraphFailure::param(
                    "give the fields to delete, e.g. {\"fields\":[\"ice_breakers\"]}",
                ));
            }
            for field in fields {
                match field.as_str() {
                    Some("ice_breakers") => account.ice_breakers.clear(),
                    Some("persistent_menu") => account.persistent_menu.clear(),
                    _ => {}
                }
            }
            Ok(json!({ "success": true }))
        }
        _ => Err(GraphFailure::no_object(id, req.method.as_str())),
    }
}

fn subscribed_apps(state: &mut State, id: &str, req: &GraphRequest) -> Result<Value, GraphFailure> {
    let app_id = state.app_id.clone();
    let Some(account) = state.accounts.get_mut(id) else {
        return Err(GraphFailure::no_object(id, "GET"));
    };
    match req.method {
        Method::POST => {
            let fields: Vec<String> = req
                .param("subscribed_fields")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect();
            if fields.is_empty() {
                return Err(GraphFailure::param(
                    "the parameter subscribed_fields is required",
                ));
            }
            account.subscribed = Some(fields);
            Ok(json!({ "success": true }))
        }
        Method::DELETE => {
            account.subscribed = None;
            Ok(json!({ "success": true }))
        }
        Method::GET => Ok(match &account.subscribed {
            Some(fields) => json!({ "data": [{ "id": app_id, "subscribed_fields": fields }] }),
            None => json!({ "data": [] }),
        }),
        _ => Err(GraphFailure::no_object(id, req.method.as_str())),
    }
}

fn public_reply(state: &mut State, account: &str, parent: &str, text: String) -> String {
    let id = state.new_comment_id();
    let now = state.now();
    let media = state
        .comments
        .get(parent)
        .map(|c| c.media.clone())
        .unwrap_or_default();
    state.comments.insert(
        id.clone(),
        crate::state::Comment {
            id: id.clone(),
            media,
            author: Author::Account(account.to_owned()),
            text: text.clone(),
            created_ms: now,
            hidden: false,
            deleted: false,
            parent: Some(parent.to_owned()),
            private_replied: false,
        },
    );
    state.public_replies.push(PublicReply {
        id: id.clone(),
        parent_id: parent.to_owned(),
        account: account.to_owned(),
        text,
        at: to_time(now),
    });
    id
}

// ----- Send API ----------------------------------------------------------------------------

fn check_text(text: &str) -> Result<(), GraphFailure> {
    if text.is_empty() {
        return Err(GraphFailure::param("message[text] must not be empty"));
    }
    if text.len() > 1000 {
        return Err(GraphFailure::param(format!(
            "Length of param message[text] must be less than or equal to 1000 bytes (UTF-8), got {}",
            text.len()
        )));
    }
    Ok(())
}

const ATTACHMENT_TYPES: &[&str] = &[
    "image",
    "audio",
    "video",
    "file",
    "like_heart",
    "MEDIA_SHARE",
    "template",
];

fn check_attachment(attachment: &Value, state: &State, account: &str) -> Result<(), GraphFailure> {
    let kind = attachment.get("type").and_then(Value::as_str).unwrap_or("");
    if !ATTACHMENT_TYPES.contains(&kind) {
        return Err(GraphFailure::param(format!(
            "unsupported attachment type `{kind}`"
        )));
    }
    let payload = attachment.get("payload");
    match kind {
        "like_heart" => Ok(()),
        "MEDIA_SHARE" => {
            let id = payload
                .and_then(|p| p.get("id"))
                .and_then(Value::as_str)
                .unwrap_or("");
            match state.media.get(id) {
                Some(media) if media.owner == account => Ok(()),
                _ => Err(GraphFailure::param(
                    "MEDIA_SHARE needs the id of a post the account owns",
                )),
            }
        }
        "template" => {
            let payload =
                payload.ok_or_else(|| GraphFailure::param("a template needs a payload"))?;
            match payload.get("template_type").and_then(Value::as_str) {
                Some("button") => {
                    let text = payload.get("text").and_then(Value::as_str).unwrap_or("");
                    let buttons = payload
                        .get("buttons")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    if text.is_empty() || text.chars().count() > 640 || !(1..=3).contains(&buttons)
                    {
                        return Err(GraphFailure::param(
                            "a button template needs 1 to 640 characters of text and 1 to 3 buttons",
                        ));
                    }
                    Ok(())
                }
                Some("generic") => {
                    let elements = payload
                        .get("elements")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    if !(1..=10).contains(&elements) {
                        return Err(GraphFailure::param(
                            "a generic template needs 1 to 10 elements",
                        ));
                    }
                    Ok(())
                }
                _ => Err(GraphFailure::param(
                    "template_type must be button or generic",
                )),
            }
        }
        _ => {
            let has_source =
                payload.is_some_and(|p| p.get("url").is_some() || p.get("attachment_id").is_some());
            if has_source {
                Ok(())
            } else {
                Err(GraphFailure::param(format!(
                    "a {kind} attachment needs payload.url or payload.attachment_id"
                )))
            }
        }
    }
}

fn check_message(
    message: &Value,
    state: &State,
    account: &str,
) -> Result<Option<String>, GraphFailure> {
    let text = message
        .get("text")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(text) = &text {
        check_text(text)?;
    }
    let attachment = message.get("attachment");
    let attachments = message.get("attachments").and_then(Value::as_array);
    if text.is_none() && attachment.is_none() && attachments.is_none() {
        return Err(GraphFailure::param(
            "message must have text, attachment or attachments",
        ));
    }
    if let Some(attachment) = attachment {
        check_attachment(attachment, state, account)?;
    }
    if let Some(items) = attachments {
        if !(1..=10).contains(&items.len()) {
            return Err(GraphFailure::param("attachments takes 1 to 10 images"));
        }
        for item in items {
            check_attachment(item, state, account)?;
        }
    }
    if let Some(replies) = message.get("quick_replies") {
        let count = replies.as_array().map_or(0, Vec::len);
        if text.is_none() || !(1..=13).contains(&count) {
            return Err(GraphFailure::param(
                "quick_replies takes 1 to 13 replies and needs text",
            ));
        }
    }
    Ok(text)
}

fn outside_window() -> GraphFailure {
    GraphFailure::new(
        10,
        Some(2534022),
        "(#10) This message is sent outside of allowed window.",
    )
}

fn no_user(id: &str) -> GraphFailure {
    GraphFailure::new(
        100,
        Some(2534014),
        format!("(#100) No matching Instagram user for id {id}"),
    )
}

/// `POST /me/messages`.
fn send(state: &mut State, caller: &Caller, req: &GraphRequest) -> Result<Value, GraphFailure> {
    let recipient = req
        .value("recipient")
        .filter(Value::is_object)
        .ok_or_else(|| GraphFailure::param("param recipient must be a non-empty object"))?;
    let body = req.json.clone().unwrap_or_else(|| {
        let mut map = Map::new();
        for key in [
            "recipient",
            "message",
            "sender_action",
            "payload",
            "messaging_type",
            "tag",
        ] {
            if let Some(v) = req.value(key) {
                map.insert(key.into(), v);
            }
        }
        Value::Object(map)
    });
    let message = req.value("message");
    let action = req.param("sender_action");
    let tag = req.param("tag");
    let now = state.now();
    let account = caller.account.clone();

    if let Some(comment_id) = recipient.get("comment_id").and_then(Value::as_str) {
        need(caller, &[BASIC, COMMENTS])?;
        if req.param("messaging_type").is_some() || tag.is_some() {
            return Err(GraphFailure::new(
                100,
                Some(1_893_060),
                "(#100) messaging_type and tag cannot be used with recipient.comment_id",
            ));
        }
        state.take_rate(&account, Bucket::PrivateReply)?;
        let message =
            message.ok_or_else(|| GraphFailure::param("a private reply needs message.text"))?;
        let text = message
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        check_text(&text)?;
        let invalid = |why: &str| {
            GraphFailure::new(
                100,
                Some(2534025),
                format!("(#100) The comment is invalid for a private reply: {why}"),
            )
        };
        let comment = state
            .comments
            .get(comment_id)
            .filter(|c| !c.deleted)
            .ok_or_else(|| invalid("no such comment"))?
            .clone();
        let owner = state.media.get(&comment.media).map(|m| m.owner.clone());
        if owner.as_deref() != Some(account.as_str()) {
            return Err(invalid("the comment is not on this account's media"));
        }
        let Author::Person(username) = &comment.author else {
            return Err(invalid(
                "the account cannot privately reply to its own comment",
            ));
        };
        if comment.private_replied {
            return Err(invalid("only one private reply can be sent per comment"));
        }
        if now.saturating_sub(comment.created_ms) > 7 * DAY_MS {
            return Err(invalid("the comment is older than 7 days"));
        }
        if let Some(c) = state.comments.get_mut(comment_id) {
            c.private_replied = true;
        }
        let conv = state.conversation(&account, username);
        let igsid = state.igsid(username, &account);
        let mid = state.store_message(&conv, true, Some(text.clone()));
        state.sent.push(SentMessage {
            mid: Some(mid.clone()),
            account: account.clone(),
            recipient: igsid.clone(),
            recipient_username: username.clone(),
            comment_id: Some(comment_id.to_owned()),
            kind: SentKind::PrivateReply,
            text: Some(text.clone()),
            tag: None,
            body,
            at: to_time(now),
        });
        echo(state, &account, &igsid, &mid, &json!({ "text": text }));
        return Ok(json!({ "recipient_id": igsid, "message_id": mid }));
    }

    need(caller, &[BASIC, MESSAGES])?;
    state.take_rate(&account, Bucket::Send)?;
    let igsid = recipient
        .get("id")
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string())
        })
        .ok_or_else(|| GraphFailure::param("recipient needs id or comment_id"))?;
    let username = match state.igsids.get(&igsid) {
        Some((name, acct)) if *acct == account => name.clone(),
        _ => return Err(no_user(&igsid)),
    };
    let conv_id = state
        .conversation_index
        .get(&(account.clone(), igsid.clone()))
        .cloned();
    let last_inbound = conv_id
        .as_ref()
        .and_then(|c| state.conversations.get(c))
        .and_then(|c| c.last_inbound_ms);
    let window = match tag.as_deref() {
        None => DAY_MS,
        Some("HUMAN_AGENT") => 7 * DAY_MS,
        Some(other) => {
            return Err(GraphFailure::param(format!(
            "the tag {other} is not available for the Instagram Messaging API; only HUMAN_AGENT is"
        )))
        }
    };
    if tag.is_some() && req.param("messaging_type").as_deref() != Some("MESSAGE_TAG") {
        return Err(GraphFailure::param(
            "a tag needs messaging_type MESSAGE_TAG",
        ));
    }
    let in_window = last_inbound.is_some_and(|t| now.saturating_sub(t) <= window);
    let (kind, text, mid) = if let Some(action) = action {
        if message.is_some() {
            return Err(GraphFailure::param(
                "sender_action must be sent alone, without message",
            ));
        }
        let kind = match action.as_str() {
            "react" => SentKind::React,
            "unreact" => SentKind::Unreact,
            "typing_on" | "typing_off" | "mark_seen" => SentKind::SenderAction,
            other => {
                return Err(GraphFailure::param(format!(
                    "unknown sender_action `{other}`"
                )))
            }
        };
        if !in_window {
            return Err(outside_window());
        }
        if matches!(kind, SentKind::React | SentKind::Unreact) {
            let payload = req.value("payload").unwrap_or(Value::Null);
            let target = payload
                .get("message_id")
                .and_then(Value::as_str)
                .unwrap_or("");
            let known = state
                .messages
                .get(target)
                .is_some_and(|m| Some(&m.conversation) == conv_id.as_ref() && !m.deleted);
            if !known {
                return Err(GraphFailure::param(
                    "payload.message_id must be a message of this conversation",
                ));
            }
            if kind == SentKind::React && payload.get("reaction").and_then(Value::as_str).is_none()
            {
                return Err(GraphFailure::param("a react needs payload.reaction"));
            }
        }
        (kind, None, None)
    } else {
        let message =
            message.ok_or_else(|| GraphFailure::param("give message or sender_action"))?;
        let text = check_message(&message, state, &account)?;
        if !in_window {
            return Err(outside_window());
        }
        let conv = state.conversation(&account, &username);
        let mid = state.store_message(&conv, true, text.clone());
        echo(state, &account, &igsid, &mid, &message);
        (SentKind::Message, text, Some(mid))
    };
    state.sent.push(SentMessage {
        mid: mid.clone(),
        account,
        recipient: igsid.clone(),
        recipient_username: username,
        comment_id: None,
        kind,
        text,
        tag,
        body,
        at: to_time(now),
    });
    Ok(match mid {
        Some(mid) => json!({ "recipient_id": igsid, "message_id": mid }),
        None => json!({ "recipient_id": igsid }),
    })
}

/// The `message_echoes` webhook of a message the account sent.
fn echo(state: &mut State, account: &str, igsid: &str, mid: &str, message: &Value) {
    if !state.echoes {
        return;
    }
    let mut echoed = Map::new();
    echoed.insert("mid".into(), json!(mid));
    if let Some(text) = message.get("text") {
        echoed.insert("text".into(), text.clone());
    }
    if let Some(attachment) = message.get("attachment") {
        echoed.insert("attachments".into(), json!([attachment]));
    }
    if let Some(attachments) = message.get("attachments") {
        echoed.insert("attachments".into(), attachments.clone());
    }
    echoed.insert("is_echo".into(), json!(true));
    let now = state.now();
    let event = json!({
        "sender": { "id": account },
        "recipient": { "id": igsid },
        "timestamp": now,
        "message": Value::Object(echoed),
    });
    notify(state, account, messaging_entry(account, now, event));
}

/// Token lifetime in seconds, as `expires_in` reports it.
pub(crate) fn long_lived_seconds() -> i64 {
    LONG_LIVED_MS / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_skip_nested_selections() {
        assert_eq!(
            field_names("id,messages{id,created_time},from, to.limit(2)"),
            vec!["id", "messages", "from", "to"]
        );
        assert!(field_names("").is_empty());
    }

    #[test]
    fn versions_are_recognised() {
        assert!(is_version("v25.0"));
        assert!(is_version("v3"));
        assert!(!is_version("v"));
        assert!(!is_version("me"));
    }

    #[test]
    fn request_reads_bearer_form_and_version() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer tok".parse().unwrap());
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let req = GraphRequest::parse(
            Method::POST,
            "/v25.0/me/messages",
            Some("a=1"),
            &headers,
            br#"recipient=%7B%22id%22%3A%221%22%7D&message=%7B%22text%22%3A%22hi%22%7D"#,
        );
        assert_eq!(req.segments, vec!["me", "messages"]);
        assert_eq!(req.token.as_deref(), Some("tok"));
        assert_eq!(req.value("recipient").unwrap()["id"], "1");
        assert_eq!(req.param("a").as_deref(), Some("1"));
    }
}

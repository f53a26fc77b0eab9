//! The `automations` table: rules and flows (automation-core JSON), validated before storing.

use automation_core::flow::Flow;
use automation_core::{Rule, RuleSet, RulesFile};
use serde::Serialize;
use sqlx::Row;

use super::{Db, Result};
use crate::service::error::{Error, ErrorKind};

/// A validation error with its location, for API answers.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The rule or flow id.
    pub rule: Option<String>,
    /// The field path.
    pub field: Option<String>,
    /// Line and column in the submitted text.
    pub position: Option<(usize, usize)>,
    /// What was wrong.
    pub message: String,
}

impl From<&automation_core::Error> for Problem {
    fn from(e: &automation_core::Error) -> Self {
        Problem {
            rule: e.rule().map(str::to_string),
            field: e.field().map(str::to_string),
            position: e.position(),
            message: e.message().to_string(),
        }
    }
}

/// Every stored rule and flow.
pub async fn load(db: &Db) -> Result<(Vec<Rule>, Vec<Flow>)> {
    let rows = sqlx::query("SELECT kind, body FROM automations ORDER BY updated_at, id")
        .fetch_all(db.pool())
        .await?;
    let (mut rules, mut flows) = (Vec::new(), Vec::new());
    for r in &rows {
        let kind: String = r.try_get("kind")?;
        let body: String = r.try_get("body")?;
        let bad = |e: serde_json::Error| {
            Error::new(
                ErrorKind::Database,
                format!("a stored {kind} could not be read ({e}); fix or delete it"),
            )
        };
        if kind == "flow" {
            flows.push(serde_json::from_str(&body).map_err(bad)?);
        } else {
            rules.push(serde_json::from_str(&body).map_err(bad)?);
        }
    }
    Ok((rules, flows))
}

/// The compiled rule set of every stored automation.
pub async fn rule_set(db: &Db) -> Result<RuleSet> {
    let (rules, flows) = load(db).await?;
    Ok(RuleSet::compile(rules, flows)?)
}

/// Validates `file` together with the stored automations (new ones replace stored ones with the
/// same account and id) and stores it. On invalid input nothing is stored and every problem is
/// returned with its location.
pub async fn save(db: &Db, file: RulesFile, now: i64) -> Result<Result<RuleSet, Vec<Problem>>> {
    let problems: Vec<Problem> = RuleSet::check(&file).iter().map(Problem::from).collect();
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    let (mut rules, mut flows) = load(db).await?;
    rules.retain(|r| {
        !file
            .rules
            .iter()
            .any(|n| n.id == r.id && n.account == r.account)
    });
    flows.retain(|f| {
        !file
            .flows
            .iter()
            .any(|n| n.id == f.id && n.account == f.account)
    });
    rules.extend(file.rules.iter().cloned());
    flows.extend(file.flows.iter().cloned());
    let set = match RuleSet::compile(rules, flows) {
        Ok(set) => set,
        Err(e) => return Ok(Err(vec![Problem::from(&e)])),
    };
    let mut tx = db.begin().await?;
    for rule in &file.rules {
        put(
            &mut tx,
            "rule",
            &rule.account,
            &rule.id,
            &serde_json::to_string(rule),
            now,
        )
        .await?;
    }
    for flow in &file.flows {
        put(
            &mut tx,
            "flow",
            &flow.account,
            &flow.id,
            &serde_json::to_string(flow),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Ok(set))
}

async fn put(
    tx: &mut super::Tx,
    kind: &str,
    account: &str,
    id: &str,
    body: &Result<String, serde_json::Error>,
    now: i64,
) -> Result<()> {
    let body = body.as_ref().map_err(|e| {
        Error::new(
            ErrorKind::Automation,
            format!("cannot serialize {kind} `{id}`: {e}"),
        )
    })?;
    sqlx::query(
        "INSERT INTO automations (id, kind, account, body, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (kind, account, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(kind)
    .bind(account)
    .bind(body)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes a rule or flow; whether it existed.
pub async fn delete(db: &Db, kind: &str, account: &str, id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM automations WHERE kind = $1 AND account = $2 AND id = $3")
        .bind(kind)
        .bind(account)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Stored automations of an organization's accounts (of one account when given), as JSON values.
pub async fn list_in(
    conn: &mut sqlx::AnyConnection,
    org: &str,
    account: Option<&str>,
) -> Result<Vec<serde_json::Value>> {
    let rows = sqlx::query(
        "SELECT kind, body FROM automations WHERE ($1 IS NULL OR account = $1) \
         AND account IN (SELECT id FROM accounts WHERE org_id = $2) ORDER BY kind, id",
    )
    .bind(account)
    .bind(org)
    .fetch_all(conn)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let kind: String = r.try_get("kind")?;
        let body: String = r.try_get("body")?;
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&body) {
            out.push(serde_json::json!({ "kind": kind, "automation": value }));
        }
    }
    Ok(out)
}

/// Stored automations of an account (or all), as JSON values.
pub async fn list(db: &Db, account: Option<&str>) -> Result<Vec<serde_json::Value>> {
    let rows = sqlx::query(
        "SELECT kind, body FROM automations WHERE ($1 IS NULL OR account = $1) ORDER BY kind, id",
    )
    .bind(account)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let kind: String = r.try_get("kind")?;
        let body: String = r.try_get("body")?;
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&body) {
            out.push(serde_json::json!({ "kind": kind, "automation": value }));
        }
    }
    Ok(out)
}

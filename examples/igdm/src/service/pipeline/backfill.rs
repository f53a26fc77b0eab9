//! Backfill of existing threads through the Conversations API (`POST /api/inbox/backfill`):
//! each step reads one page of the account's conversations (their ids) or one conversation's
//! 20 most recent messages (the ones Meta returns in detail) and records them as the inbox's
//! messages. At most 2 calls per second per account (the Conversations API's limit): every
//! call is followed by a 500 ms pause, and one instance at a time works on an account (a
//! lease). Progress is stored after every step, so a backfill resumes where it stopped (after a
//! restart, or when started again after a failure).

use std::sync::OnceLock;
use std::time::Duration;

use super::Shared;
use crate::service::db;
use crate::service::db::backfill::{self, Claimed};
use crate::service::db::conversations::{self, Backfilled};
use crate::service::error::Result;

/// The pause after every Conversations API call: 2 calls per second per account.
pub const CALL_SPACING: Duration = Duration::from_millis(500);

/// Messages read per conversation: Meta returns only the 20 most recent in detail.
const READABLE: usize = 20;

/// Conversations read per page.
const PAGE_SIZE: usize = 10;

/// How long a step may hold an account's backfill.
const LEASE_MS: i64 = 60_000;

/// This instance's lease owner (one per process, so that it keeps its accounts between steps).
fn owner() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| format!("backfill-{}-{}", std::process::id(), db::now_ms()))
}

/// Runs one step of the backfill that waited longest; 1 when there was one.
pub async fn run_once(shared: &Shared) -> Result<usize> {
    let now = db::now_ms();
    let Some(job) = backfill::claim(&shared.db, owner(), now, now + LEASE_MS).await? else {
        return Ok(0);
    };
    if let Err(e) = step(shared, &job).await {
        tracing::warn!(account = %job.account, error = %e, "backfill stopped; start it again to resume");
        backfill::fail(&shared.db, &job.account, &e.to_string(), db::now_ms()).await?;
    }
    Ok(1)
}

/// Makes a call, then waits [`CALL_SPACING`] (failed calls count too).
async fn paced<T>(
    call: impl std::future::Future<
        Output = std::result::Result<instagram_graph::client::Response<T>, instagram_graph::Error>,
    >,
) -> Result<T> {
    let answer = call.await;
    tokio::time::sleep(CALL_SPACING).await;
    Ok(answer?.data)
}

async fn step(shared: &Shared, job: &Claimed) -> Result<()> {
    let client = shared.client_for(&job.account).await?;
    let mut pending = job.pending.clone();
    if let Some(conversation) = pending.first().cloned() {
        // one conversation: its message ids, then each message
        let listed = paced(client.conversation_messages(&conversation)).await?;
        let mut read = Vec::new();
        let mut contact = None;
        for summary in listed.data.iter().take(READABLE) {
            let m = paced(client.message(summary.id.as_str(), &[])).await?;
            let from = m
                .from
                .as_ref()
                .and_then(|f| f.id.clone())
                .unwrap_or_default();
            let inbound = from != job.account;
            if inbound {
                contact.get_or_insert(from);
            } else if contact.is_none() {
                contact =
                    m.to.as_ref()
                        .and_then(|to| to.data.iter().find_map(|p| p.id.clone()))
                        .filter(|id| *id != job.account);
            }
            let at = m
                .created_time
                .or(summary.created_time)
                .map(|t| t.timestamp_millis())
                .unwrap_or_else(db::now_ms);
            read.push(Backfilled::new(
                m.id.as_str().to_string(),
                inbound,
                m.message,
                at,
            ));
        }
        pending.remove(0);
        let mut tx = shared.db.begin().await?;
        let added = match &contact {
            Some(contact) => {
                conversations::record_backfilled(
                    &mut tx,
                    &job.account,
                    contact,
                    &read,
                    db::now_ms(),
                )
                .await?
            }
            None => 0,
        };
        let done = pending.is_empty() && job.started && job.next_cursor.is_none();
        backfill::progress(
            &mut tx,
            &job.account,
            job.next_cursor.as_deref(),
            &pending,
            1,
            i64::try_from(added).unwrap_or(i64::MAX),
            done,
            db::now_ms(),
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    // the next page of conversations
    let mut request = client
        .conversations()
        .fields(&["id", "updated_time"])
        .limit(PAGE_SIZE);
    if let Some(cursor) = &job.next_cursor {
        request = request.after(cursor.clone());
    }
    let page = paced(request.send()).await?;
    let ids: Vec<String> = page
        .data
        .iter()
        .map(|c| c.id.as_str().to_string())
        .collect();
    let next = page.next_cursor();
    let done = ids.is_empty() && next.is_none();
    let mut tx = shared.db.begin().await?;
    backfill::progress(
        &mut tx,
        &job.account,
        next.as_deref(),
        &ids,
        0,
        0,
        done,
        db::now_ms(),
    )
    .await?;
    tx.commit().await
}

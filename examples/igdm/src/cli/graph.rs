//! `igdm graph`: call the Instagram Graph API from the command line and print JSON.
//!
//! The token comes from `--token` or `IGDM_TOKEN` and travels in the `Authorization` header.
//! `--api-base` points the client at another server (a local simulator or a mock). A Graph error
//! prints one line with its kind, code/subcode, message and what to do, and exits 1.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use futures_util::StreamExt;
use instagram_graph::id::PageId;
use instagram_graph::{Client, Error, Flavor};
use serde::Serialize;

use super::Failure;

/// Options shared by every `igdm graph` subcommand.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The access token (Instagram user token, or Page token with --page-id).
    #[arg(long, env = "IGDM_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// The API base URL, e.g. http://127.0.0.1:8080 for a local server.
    #[arg(long, global = true)]
    api_base: Option<String>,
    /// The Graph API version.
    #[arg(long, global = true, default_value = instagram_graph::DEFAULT_GRAPH_VERSION)]
    graph_version: String,
    /// Use Facebook Login: messaging and conversations go through this Page.
    #[arg(long, global = true)]
    page_id: Option<String>,
    #[command(subcommand)]
    command: GraphCommand,
}

#[derive(Debug, Subcommand)]
enum GraphCommand {
    /// Read the account behind the token (GET /me).
    Me {
        /// Comma-separated fields (default: the usual account fields).
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
    },
    /// Media of the account.
    #[command(subcommand)]
    Media(MediaCommand),
    /// Comments on a media object.
    #[command(subcommand)]
    Comments(CommentsCommand),
    /// Conversations of the account.
    #[command(subcommand)]
    Conversations(ConversationsCommand),
    /// Messages of a conversation.
    #[command(subcommand)]
    Messages(MessagesCommand),
    /// Read a person's profile by IGSID (User Profile API).
    Profile {
        /// The Instagram-scoped id of the person.
        igsid: String,
        /// Comma-separated fields (default: name, username, profile_pic, ...).
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
    },
    /// Send a text message to a person.
    SendText {
        /// The Instagram-scoped id of the recipient.
        igsid: String,
        /// The text (at most 1,000 UTF-8 bytes).
        text: String,
        /// Tag the message HUMAN_AGENT (a person answers within 7 days).
        #[arg(long)]
        human_agent: bool,
    },
    /// Send the one private reply a comment allows.
    PrivateReply {
        /// The comment id.
        comment_id: String,
        /// The text (at most 1,000 UTF-8 bytes).
        text: String,
    },
}

#[derive(Debug, Subcommand)]
enum MediaCommand {
    /// List media (one page, or every page with --all).
    List {
        /// The account node.
        #[arg(long, default_value = "me")]
        user: String,
        /// Page size.
        #[arg(long)]
        limit: Option<usize>,
        /// Follow every page.
        #[arg(long)]
        all: bool,
        /// Comma-separated fields.
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
    },
    /// Read one media object.
    Get {
        /// The media id.
        id: String,
        /// Comma-separated fields.
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum CommentsCommand {
    /// List the comments of a media object (at most 50 per page).
    List {
        /// The media id.
        media_id: String,
        /// Page size (1 to 50).
        #[arg(long)]
        limit: Option<usize>,
        /// Follow every page.
        #[arg(long)]
        all: bool,
        /// Comma-separated fields.
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConversationsCommand {
    /// List conversations.
    List {
        /// Page size.
        #[arg(long)]
        limit: Option<usize>,
        /// Only the conversation with this person (IGSID).
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum MessagesCommand {
    /// List the messages of a conversation (ids and times; details for the 20 most recent).
    List {
        /// The conversation id.
        conversation_id: String,
    },
    /// Read one message (works for the 20 most recent of a conversation).
    Get {
        /// The message id.
        message_id: String,
    },
}

/// One line describing an error: kind, code/subcode, message, and what to do.
pub fn describe(error: &Error) -> String {
    let mut line = error.kind().name().to_owned();
    if let Some(code) = error.code() {
        line.push_str(&format!(" (code {code}"));
        if let Some(sub) = error.subcode() {
            line.push_str(&format!("/{sub}"));
        }
        line.push(')');
    }
    let message = error
        .graph()
        .map(|g| g.message.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| error.to_string());
    line.push_str(&format!(": {message}; what to do: {}", error.advice()));
    line.replace(['\n', '\r'], " ")
}

fn print_json<T: Serialize>(value: &T) -> Result<ExitCode, Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(format!("could not print the result as JSON: {e}")))?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn fields(list: &[String]) -> Vec<&str> {
    list.iter()
        .map(String::as_str)
        .filter(|f| !f.is_empty())
        .collect()
}

/// Runs `igdm graph ...`.
pub fn run(args: GraphArgs) -> Result<ExitCode, Failure> {
    let token = args
        .token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| Failure::new("no access token: pass --token or set IGDM_TOKEN"))?;
    let mut builder = Client::builder(token).graph_version(args.graph_version.clone());
    if let Some(page) = &args.page_id {
        builder = builder.flavor(Flavor::FacebookLogin {
            page_id: PageId::new(page.clone()),
        });
    }
    if let Some(base) = &args.api_base {
        builder = builder.base_url(base.clone());
    }
    let client = builder.build().map_err(|e| Failure::new(describe(&e)))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("could not start the async runtime: {e}")))?;
    runtime.block_on(dispatch(&client, args.command))
}

async fn dispatch(client: &Client, command: GraphCommand) -> Result<ExitCode, Failure> {
    let fail = |e: Error| Failure::new(describe(&e));
    match command {
        GraphCommand::Me { fields: f } => {
            let me = client.me(&fields(&f)).await.map_err(fail)?;
            print_json(&me.data)
        }
        GraphCommand::Media(MediaCommand::List {
            user,
            limit,
            all,
            fields: f,
        }) => {
            let mut request = client.media_list(&user);
            if !f.is_empty() {
                request = request.fields(&fields(&f));
            }
            if let Some(limit) = limit {
                request = request.limit(limit);
            }
            if all {
                let mut items = Vec::new();
                let mut pages = Box::pin(request.pages());
                while let Some(page) = pages.next().await {
                    items.extend(page.map_err(fail)?.data.data);
                }
                print_json(&items)
            } else {
                print_json(&request.send().await.map_err(fail)?.data)
            }
        }
        GraphCommand::Media(MediaCommand::Get { id, fields: f }) => {
            let media = client.media(&id, &fields(&f)).await.map_err(fail)?;
            print_json(&media.data)
        }
        GraphCommand::Comments(CommentsCommand::List {
            media_id,
            limit,
            all,
            fields: f,
        }) => {
            let mut request = client.comments(&media_id);
            if !f.is_empty() {
                request = request.fields(&fields(&f));
            }
            if let Some(limit) = limit {
                request = request.limit(limit);
            }
            if all {
                let mut items = Vec::new();
                let mut pages = Box::pin(request.pages());
                while let Some(page) = pages.next().await {
                    items.extend(page.map_err(fail)?.data.data);
                }
                print_json(&items)
            } else {
                print_json(&request.send().await.map_err(fail)?.data)
            }
        }
        GraphCommand::Conversations(ConversationsCommand::List { limit, user }) => {
            if let Some(user) = user {
                let found = client.find_conversation(&user).await.map_err(fail)?;
                return print_json(&found.data);
            }
            let mut request = client.conversations();
            if let Some(limit) = limit {
                request = request.limit(limit);
            }
            print_json(&request.send().await.map_err(fail)?.data)
        }
        GraphCommand::Messages(MessagesCommand::List { conversation_id }) => {
            let messages = client
                .conversation_messages(&conversation_id)
                .await
                .map_err(fail)?;
            print_json(&messages.data)
        }
        GraphCommand::Messages(MessagesCommand::Get { message_id }) => {
            let message = client.message(&message_id, &[]).await.map_err(fail)?;
            print_json(&message.data)
        }
        GraphCommand::Profile { igsid, fields: f } => {
            let profile = client
                .user_profile(&igsid, &fields(&f))
                .await
                .map_err(fail)?;
            print_json(&profile.data)
        }
        GraphCommand::SendText {
            igsid,
            text,
            human_agent,
        } => {
            let mut request =
                instagram_graph::model::SendRequest::text(igsid.as_str(), text).map_err(fail)?;
            if human_agent {
                request = request.human_agent().map_err(fail)?;
            }
            let sent = client.send(&request).await.map_err(fail)?;
            print_json(&sent.data)
        }
        GraphCommand::PrivateReply { comment_id, text } => {
            let sent = client
                .private_reply(comment_id.as_str(), text)
                .await
                .map_err(fail)?;
            print_json(&sent.data)
        }
    }
}

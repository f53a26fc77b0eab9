-- The team inbox (issue 7, item 2): conversations, their messages and internal notes, and the
-- organizations' inbox settings. Keep in step with ../sqlite/0009_inbox.sql.

-- One conversation per account and contact.
CREATE TABLE conversations (
    account           TEXT NOT NULL,
    contact           TEXT NOT NULL,
    status            TEXT NOT NULL,          -- open | pending | closed
    snoozed_until     BIGINT,                -- hidden from the open list until then; a new message wakes it
    assignee          TEXT,                   -- a users id of the account's organization
    last_inbound_at   BIGINT,                -- the contact's last message
    last_outbound_at  BIGINT,                -- the account's last message
    waiting_since     BIGINT,                -- the contact's first message no agent answered yet
    first_inbound_at  BIGINT,                -- the contact's first message
    first_response_at BIGINT,                -- the first agent reply after it
    first_response_ms BIGINT,                -- first_response_at - first_inbound_at
    human_until       BIGINT,                -- automation paused (an agent handles it) until then
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (account, contact)
);
CREATE INDEX conversations_status ON conversations (account, status, last_inbound_at);
CREATE INDEX conversations_assignee ON conversations (assignee);
CREATE INDEX conversations_first_response ON conversations (first_response_at);

-- Messages of conversations, per account and Instagram message id.
CREATE TABLE messages (
    account     TEXT NOT NULL,
    mid         TEXT NOT NULL,
    contact     TEXT NOT NULL,
    direction   TEXT NOT NULL,                -- in | out
    text        TEXT,
    attachments TEXT NOT NULL DEFAULT '[]',   -- JSON array of {type, url}
    sent_at     BIGINT NOT NULL,
    sent_by     TEXT NOT NULL,                -- contact | automation | agent | app (a person in Instagram's app)
    agent       TEXT,                         -- the users id of the agent who replied
    reactions   TEXT NOT NULL DEFAULT '{}',   -- JSON {who: emoji}
    read_at     BIGINT,                      -- when the contact read it (outbound)
    PRIMARY KEY (account, mid)
);
CREATE INDEX messages_conversation ON messages (account, contact, sent_at);
CREATE INDEX messages_agent ON messages (agent);

-- Internal notes on conversations (never sent).
CREATE TABLE conversation_notes (
    id         TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    contact    TEXT NOT NULL,
    author     TEXT,                          -- a users id
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX conversation_notes_conversation ON conversation_notes (account, contact, created_at);
CREATE INDEX conversation_notes_author ON conversation_notes (author);

-- Inbox settings per organization: round-robin assignment and whose turn was last.
CREATE TABLE inbox_settings (
    org_id        TEXT PRIMARY KEY,
    round_robin   BIGINT NOT NULL DEFAULT 0,
    last_assignee TEXT,
    updated_at    BIGINT NOT NULL
);

-- Backfills of existing threads through the Conversations API, resumable: the conversations of
-- the page being read (`pending`, JSON array of ids) and the cursor of the next page.
CREATE TABLE inbox_backfills (
    account       TEXT PRIMARY KEY,
    status        TEXT NOT NULL,              -- running | done | failed
    next_cursor   TEXT,
    pending       TEXT NOT NULL DEFAULT '[]',
    conversations BIGINT NOT NULL DEFAULT 0,
    messages      BIGINT NOT NULL DEFAULT 0,
    error         TEXT,
    lease_owner   TEXT,
    lease_until   BIGINT,
    started_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Row-level security, as for the other tenant tables (0003_teams.sql).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['conversations', 'messages', 'conversation_notes', 'inbox_backfills'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY igdm_tenant ON %I USING (account IN '
                       '(SELECT id FROM accounts WHERE org_id = current_setting(''igdm.org_id'', true)))', t);
    END LOOP;
END $$;
ALTER TABLE inbox_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY igdm_tenant ON inbox_settings
    USING (org_id = current_setting('igdm.org_id', true));

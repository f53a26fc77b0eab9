-- The igdm reference service schema (SQLite). Times are INTEGER Unix milliseconds; ids are TEXT.
-- Keep in step with ../postgres/0001_init.sql.

-- Raw webhook notifications, committed before the 200 is returned. id = sha256(body), hex.
CREATE TABLE inbox (
    id           TEXT PRIMARY KEY,
    body         BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    status       TEXT NOT NULL,          -- pending | done | rejected | failed
    reason       TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_owner  TEXT,
    lease_until  INTEGER,
    processed_at INTEGER
);
CREATE INDEX inbox_pending ON inbox (status, received_at);

-- One row per normalized event, keyed per account (mid | comment id | kind+ids+time).
CREATE TABLE events (
    account      TEXT NOT NULL,
    key          TEXT NOT NULL,
    inbox_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    contact      TEXT NOT NULL,
    text         TEXT,
    occurred_at  INTEGER NOT NULL,
    processed_at INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    rule         TEXT,
    decision     TEXT NOT NULL,
    PRIMARY KEY (account, key)
);
CREATE INDEX events_contact ON events (account, contact, occurred_at);
CREATE INDEX events_rule ON events (account, rule);

-- One row per planned action; key = event key + '#' + action index.
CREATE TABLE outbox (
    key             TEXT PRIMARY KEY,
    account         TEXT NOT NULL,
    event_key       TEXT NOT NULL,
    action_index    INTEGER NOT NULL,
    rule            TEXT,
    kind            TEXT NOT NULL,        -- private_reply | public_reply | send_dm | webhook
    recipient       TEXT NOT NULL,
    action          TEXT NOT NULL,        -- the PlannedAction as JSON
    status          TEXT NOT NULL,        -- queued | sending | sent | delivered | read | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    mid             TEXT,
    error_kind      TEXT,
    error_message   TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_mid ON outbox (mid);
CREATE INDEX outbox_recipient ON outbox (account, recipient, status);

-- Every attempt and status change of an outbox row.
CREATE TABLE delivery_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_key    TEXT NOT NULL,
    account       TEXT NOT NULL,
    rule          TEXT,
    kind          TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    status        TEXT NOT NULL,          -- queued | sent | delivered | read | failed | retry | held
    error_kind    TEXT,
    error_message TEXT,
    mid           TEXT,
    at            INTEGER NOT NULL
);
CREATE INDEX delivery_log_account ON delivery_log (account, at);
CREATE INDEX delivery_log_outbox ON delivery_log (outbox_key);

-- Connected Instagram accounts. The token is stored only sealed by the privacy-kit vault.
CREATE TABLE accounts (
    id               TEXT PRIMARY KEY,
    username         TEXT,
    token_sealed     TEXT NOT NULL,
    token_expires_at INTEGER,
    status           TEXT NOT NULL,        -- active | needs_reconnect | disconnected
    status_reason    TEXT,
    connected_at     INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_webhook_at  INTEGER,
    failures         INTEGER NOT NULL DEFAULT 0
);

-- Media of connected accounts (synced on connect).
CREATE TABLE media (
    account    TEXT NOT NULL,
    id         TEXT NOT NULL,
    kind       TEXT,
    caption    TEXT,
    permalink  TEXT,
    synced_at  INTEGER NOT NULL,
    PRIMARY KEY (account, id)
);

-- Automations: rules and flows as automation-core JSON, validated before they are stored.
CREATE TABLE automations (
    id         TEXT NOT NULL,
    kind       TEXT NOT NULL,              -- rule | flow
    account    TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, account, id)
);

-- automation-core's stores.
CREATE TABLE contacts (
    account          TEXT NOT NULL,
    id               TEXT NOT NULL,
    username         TEXT,
    body             TEXT NOT NULL,
    last_interaction INTEGER NOT NULL,
    PRIMARY KEY (account, id)
);
CREATE TABLE dedup_keys (
    account TEXT NOT NULL,
    key     TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (account, key)
);
CREATE TABLE firings (
    account TEXT NOT NULL,
    rule    TEXT NOT NULL,
    contact TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (account, rule, contact)
);
CREATE TABLE counters (
    account      TEXT NOT NULL,
    key          TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    value        INTEGER NOT NULL,
    PRIMARY KEY (account, key, window_start)
);
CREATE TABLE flow_states (
    account TEXT NOT NULL,
    contact TEXT NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (account, contact)
);
CREATE TABLE flow_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    body    TEXT NOT NULL,
    at      INTEGER NOT NULL
);

-- Privacy operations (privacy-kit wired to SQL). Keep in step with ../sqlite/0004_privacy.sql.
-- Times are BIGINT Unix milliseconds; ids TEXT.

-- The app-scoped id Meta sends in the deauthorize and data-deletion callbacks, and when the
-- connection was removed (the anchor of the "tokens" and "connection data" retention presets).
ALTER TABLE accounts ADD COLUMN app_user_id TEXT;
ALTER TABLE accounts ADD COLUMN disconnected_at BIGINT;
CREATE INDEX accounts_app_user ON accounts (app_user_id);

-- When a DM log row was anonymized by retention (its personal fields blanked).
ALTER TABLE outbox ADD COLUMN anonymized_at BIGINT;
ALTER TABLE delivery_log ADD COLUMN anonymized_at BIGINT;
ALTER TABLE flow_events ADD COLUMN anonymized_at BIGINT;

-- Deletion receipts (privacy-kit DeletionReceipt), looked up by confirmation code. The subject id
-- is kept only while the deletion is not done (`pending_subject`); `body` holds a pseudonym.
CREATE TABLE deletion_receipts (
    code            TEXT PRIMARY KEY,
    subject_kind    TEXT NOT NULL,
    subject_ref     TEXT NOT NULL,          -- pseudonym of the subject id
    pending_subject TEXT,                   -- the subject id, NULL once the deletion is done
    status          TEXT NOT NULL,
    body            TEXT NOT NULL,          -- the receipt as JSON (subject pseudonymized)
    requested_at    BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX deletion_receipts_status ON deletion_receipts (status, requested_at);

-- The audit register (privacy-kit AuditEntry, hash-chained). Ids of people and accounts appear
-- only as pseudonyms; `account_ref` is the pseudonym of the account, for per-account listing.
CREATE TABLE privacy_audit (
    seq         BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    account_ref TEXT,
    actor       TEXT NOT NULL,
    body        TEXT NOT NULL
);

-- Export bundles, downloadable once through an expiring link (token stored as SHA-256).
CREATE TABLE export_links (
    token_hash   TEXT PRIMARY KEY,
    account      TEXT NOT NULL,
    contact      TEXT,
    subject_kind TEXT NOT NULL,
    bundle       BYTEA NOT NULL,
    records      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX export_links_account ON export_links (account, contact);

-- Retention presets chosen per account (absent: the defaults).
CREATE TABLE retention_settings (
    account    TEXT PRIMARY KEY,
    presets    TEXT NOT NULL,               -- JSON array of preset names
    updated_at BIGINT NOT NULL
);

-- What each retention sweep did, per account (counts only).
CREATE TABLE retention_reports (
    id      BIGSERIAL PRIMARY KEY,
    account TEXT NOT NULL,
    at      BIGINT NOT NULL,
    body    TEXT NOT NULL                   -- privacy-kit RetentionReport as JSON
);
CREATE INDEX retention_reports_account ON retention_reports (account, at);

-- Government and legal requests (P16): the request, the basis cited, our answer, what was
-- disclosed. Anonymized (ids pseudonymized) when their account or contact is deleted.
CREATE TABLE legal_requests (
    id            TEXT PRIMARY KEY,
    account       TEXT NOT NULL,
    contact       TEXT,
    authority     TEXT NOT NULL,
    request       TEXT NOT NULL,
    legal_basis   TEXT NOT NULL,
    response      TEXT,
    disclosed     TEXT,
    received_at   BIGINT NOT NULL,
    answered_at   BIGINT,
    anonymized_at BIGINT
);
CREATE INDEX legal_requests_account ON legal_requests (account, received_at);

-- Opt-in consent records (P19): one row per opt-in event of a contact.
CREATE TABLE consents (
    account  TEXT NOT NULL,
    contact  TEXT NOT NULL,
    event    TEXT NOT NULL,                 -- the event key
    kind     TEXT NOT NULL,                 -- opt_in
    payload  TEXT,
    at       BIGINT NOT NULL,
    PRIMARY KEY (account, event)
);
CREATE INDEX consents_contact ON consents (account, contact, at);

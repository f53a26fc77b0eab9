-- Organizations, members, roles, sessions and API keys (issue 7, item 1). Keep in step with
-- ../postgres/0003_teams.sql. Secrets (passwords, session tokens, API keys, invitation tokens)
-- are stored only as one-way hashes.

CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- The operator's organization: config `api_keys` act as its Owner, accounts connected by the
-- CLI or without a caller belong to it.
INSERT INTO organizations (id, name, created_at) VALUES ('bootstrap', 'Operator', 0);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,       -- trimmed, lower-case
    password_hash TEXT NOT NULL,              -- argon2id PHC string
    created_at    INTEGER NOT NULL
);

CREATE TABLE members (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL,                 -- owner | admin | agent
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX members_user ON members (user_id);

CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,         -- sha256 hex of the token
    invited_by  TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    accepted_at INTEGER
);
CREATE INDEX invitations_org ON invitations (org_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,              -- sha256 hex of the cookie value
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,        -- sha256 hex of the key
    prefix       TEXT NOT NULL,               -- the first characters, to recognise it
    created_by   TEXT,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX api_keys_org ON api_keys (org_id);

-- Every connected account belongs to one organization.
ALTER TABLE accounts ADD COLUMN org_id TEXT NOT NULL DEFAULT 'bootstrap';
CREATE INDEX accounts_org ON accounts (org_id);

-- (PostgreSQL adds row-level security policies here; SQLite has none: the application's
-- scoping by organization is the only wall on SQLite.)

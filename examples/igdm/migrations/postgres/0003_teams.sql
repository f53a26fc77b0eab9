-- Organizations, members, roles, sessions and API keys (issue 7, item 1). Keep in step with
-- ../sqlite/0003_teams.sql. Secrets (passwords, session tokens, API keys, invitation tokens)
-- are stored only as one-way hashes.

CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The operator's organization: config `api_keys` act as its Owner, accounts connected by the
-- CLI or without a caller belong to it.
INSERT INTO organizations (id, name, created_at) VALUES ('bootstrap', 'Operator', 0);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,       -- trimmed, lower-case
    password_hash TEXT NOT NULL,              -- argon2id PHC string
    created_at    BIGINT NOT NULL
);

CREATE TABLE members (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL,                 -- owner | admin | agent
    created_at BIGINT NOT NULL,
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
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT
);
CREATE INDEX invitations_org ON invitations (org_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,              -- sha256 hex of the cookie value
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
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
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_keys_org ON api_keys (org_id);

-- Every connected account belongs to one organization.
ALTER TABLE accounts ADD COLUMN org_id TEXT NOT NULL DEFAULT 'bootstrap';
CREATE INDEX accounts_org ON accounts (org_id);

-- Row-level security: the second wall behind the application's own scoping (PostgreSQL only).
-- A connection that is not the tables' owner (the application's database role) sees and
-- changes only the rows of the organization named by `SET LOCAL igdm.org_id = '<org id>'` in
-- its transaction, and nothing when it is unset. The owner role (migrations, the pipeline
-- workers that serve every organization) is not subject to the policies (no FORCE).
ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY igdm_tenant ON organizations
    USING (id = current_setting('igdm.org_id', true));

ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY igdm_tenant ON accounts
    USING (org_id = current_setting('igdm.org_id', true));

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY igdm_tenant ON users
    USING (id IN (SELECT user_id FROM members WHERE org_id = current_setting('igdm.org_id', true)));

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['members', 'invitations', 'sessions', 'api_keys'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY igdm_tenant ON %I '
                       'USING (org_id = current_setting(''igdm.org_id'', true))', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['events', 'outbox', 'delivery_log', 'media', 'automations',
                             'contacts', 'dedup_keys', 'firings', 'counters', 'flow_states',
                             'flow_events', 'wakes'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY igdm_tenant ON %I USING (account IN '
                       '(SELECT id FROM accounts WHERE org_id = current_setting(''igdm.org_id'', true)))', t);
    END LOOP;
END $$;

-- Raw notifications are not yet attributed to an account: only the owner role reads them.
ALTER TABLE inbox ENABLE ROW LEVEL SECURITY;

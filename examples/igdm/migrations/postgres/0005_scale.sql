-- Several service instances on one database (PostgreSQL): each account's sending is owned by one
-- instance at a time, so that one process paces the account's calls against the platform's
-- per-account limits. Unused on SQLite (one process). Keep in step with ../sqlite/0005_scale.sql.

-- Running instances, by heartbeat: the fair share of accounts per instance is derived from them.
CREATE TABLE service_instances (
    id         TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL
);

-- Who sends for an account, until when. A new owner sends from sends_from (one rate-limit window
-- after it took the account over); the old owner stops calling before lease_until.
CREATE TABLE account_leases (
    account     TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    sends_from  BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL
);
CREATE INDEX account_leases_owner ON account_leases (owner);

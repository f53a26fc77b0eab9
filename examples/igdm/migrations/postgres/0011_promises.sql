-- The promises that needed their own storage (issue 7: P5, P8, P15, P17). Keep in step with
-- ../sqlite/0011_promises.sql.

-- P15: data-subject requests (access, rectification, erasure, restriction, objection,
-- portability) share the register of legal requests; `kind` says which (`legal` for the
-- government and legal requests of P16), `due_at` when the answer is due (received + 30 days).
ALTER TABLE legal_requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'legal';
ALTER TABLE legal_requests ADD COLUMN due_at BIGINT;
CREATE INDEX legal_requests_due ON legal_requests (org_id, answered_at, due_at);

-- P8: an organization's own data classes with their retention periods (privacy-kit
-- RetentionPolicy as JSON, one per class), and the records it keeps in them (payment records,
-- support correspondence...), which the sweeper deletes or anonymizes when their period ends.
CREATE TABLE retention_classes (
    org_id     TEXT NOT NULL,
    name       TEXT NOT NULL,
    policy     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, name)
);

CREATE TABLE org_records (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL,
    data_class       TEXT NOT NULL,
    reference        TEXT,
    body             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    last_activity_at BIGINT,
    anonymized_at    BIGINT
);
CREATE INDEX org_records_class ON org_records (org_id, data_class, created_at);

-- P17: who called the management API: the member (`user_ref`: the pseudonym of their user id,
-- which the log's reader resolves for current members, so that a deleted member leaves no id)
-- or the API key (`api_key_id`, its id, never the key), the route pattern (no raw ids), the
-- answer's status and the time.
CREATE TABLE access_log (
    id          BIGSERIAL PRIMARY KEY,
    org_id      TEXT NOT NULL,
    user_ref    TEXT,
    api_key_id  TEXT,
    credential  TEXT NOT NULL,
    method      TEXT NOT NULL,
    route       TEXT NOT NULL,
    status      BIGINT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX access_log_org ON access_log (org_id, at);

-- P5: what the organization's connections may read: `full` (messages and comments, for inboxes
-- and CRMs) or `automations` (only what its automations need: a comment-only configuration asks
-- no messaging permission and keeps no private message).
ALTER TABLE organizations ADD COLUMN data_access TEXT NOT NULL DEFAULT 'full';

-- Row-level security, as for the other tenant tables (0003_teams.sql).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['retention_classes', 'org_records', 'access_log'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY igdm_tenant ON %I '
                       'USING (org_id = current_setting(''igdm.org_id'', true))', t);
    END LOOP;
END $$;

-- The team inbox's response times: one row per episode of a conversation (from the contact's
-- first message while it was not open, to the first agent reply), so that a reopened
-- conversation's earlier answer stays counted in the period it was given.
CREATE TABLE response_times (
    account      TEXT NOT NULL,
    contact      TEXT NOT NULL,
    opened_at    BIGINT NOT NULL,   -- the contact's first message of the episode (Unix ms)
    responded_at BIGINT NOT NULL,   -- the first agent reply (Unix ms)
    response_ms  BIGINT NOT NULL,
    PRIMARY KEY (account, contact, opened_at)
);
CREATE INDEX response_times_at ON response_times (account, responded_at);

-- the episodes answered so far, as the conversations hold them
INSERT INTO response_times (account, contact, opened_at, responded_at, response_ms)
SELECT account, contact, first_inbound_at, first_response_at, first_response_ms
FROM conversations
WHERE first_inbound_at IS NOT NULL AND first_response_at IS NOT NULL
  AND first_response_ms IS NOT NULL;

-- Row-level security, as for the other tables of the team inbox.
ALTER TABLE response_times ENABLE ROW LEVEL SECURITY;
CREATE POLICY igdm_tenant ON response_times USING (account IN
    (SELECT id FROM accounts WHERE org_id = current_setting('igdm.org_id', true)));

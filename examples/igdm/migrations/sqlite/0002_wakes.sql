-- Flow delays: when to resume a contact's flow (automation-core's Wake actions).
CREATE TABLE wakes (
    account     TEXT NOT NULL,
    contact     TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    PRIMARY KEY (account, contact)
);
CREATE INDEX wakes_due ON wakes (due_at);

-- Webhook subscriptions (outbound: events POSTed to a URL; inbound: a signed endpoint other
-- tools POST to), outbound deliveries and every delivery attempt. Keep in step with
-- ../sqlite/0006_outbound.sql.

-- A subscription belongs to an organization (org_id) and/or one Instagram account (account =
-- accounts.id). An outbound subscription with neither receives every account's events (the
-- single-tenant service); an inbound one always names its account.
CREATE TABLE webhook_subscriptions (
    id            TEXT PRIMARY KEY,           -- sub_<hex>
    direction     TEXT NOT NULL,              -- outbound | inbound
    org_id        TEXT,
    account       TEXT,
    url           TEXT,                       -- outbound only
    event_types   TEXT NOT NULL,              -- JSON array of event types (outbound)
    description   TEXT,
    secret_sealed TEXT NOT NULL,              -- the whsec_ secret, sealed by the vault
    enabled       BIGINT NOT NULL DEFAULT 1,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX webhook_subscriptions_account ON webhook_subscriptions (direction, account);
CREATE INDEX webhook_subscriptions_org ON webhook_subscriptions (org_id);

-- One row per event per subscription, written in the transaction that produced the event.
CREATE TABLE outbound_deliveries (
    id               TEXT PRIMARY KEY,        -- msg_<hex>: the webhook-id header
    subscription_id  TEXT NOT NULL,
    org_id           TEXT,
    account          TEXT,
    contact          TEXT,                    -- the contact (IGSID) the event is about
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,           -- the JSON body sent
    status           TEXT NOT NULL,           -- pending | delivered | failed (attempts reset on redelivery)
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    last_status_code BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    delivered_at     BIGINT
);
CREATE INDEX outbound_deliveries_due ON outbound_deliveries (status, next_attempt_at);
CREATE INDEX outbound_deliveries_subscription ON outbound_deliveries (subscription_id, created_at);
CREATE INDEX outbound_deliveries_account ON outbound_deliveries (account, contact, created_at);

-- Every attempt of an outbound delivery.
CREATE TABLE outbound_attempts (
    id              BIGSERIAL PRIMARY KEY,
    delivery_id     TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    org_id          TEXT,
    account         TEXT,
    attempt         BIGINT NOT NULL,
    outcome         TEXT NOT NULL,            -- delivered | retry | failed
    status_code     BIGINT,
    error           TEXT,
    duration_ms     BIGINT NOT NULL,
    at              BIGINT NOT NULL
);
CREATE INDEX outbound_attempts_delivery ON outbound_attempts (delivery_id, id);

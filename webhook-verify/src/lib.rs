//! Verification of inbound webhooks: Meta's `X-Hub-Signature-256`, the subscription handshake,
//! Meta's `signed_request`, and Standard Webhooks.

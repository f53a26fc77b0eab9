-- Privacy operations scoped by organization (issue 7, items 1 and 5). Keep in step with
-- ../postgres/0007_privacy_orgs.sql. The register, receipts, legal requests and export links
-- name the organization they belong to, so that each organization sees only its own; rows
-- written by Meta's callbacks (which name no organization) have none and are seen by nobody
-- through the API.
ALTER TABLE deletion_receipts ADD COLUMN org_id TEXT;
CREATE INDEX deletion_receipts_org ON deletion_receipts (org_id, requested_at);

ALTER TABLE privacy_audit ADD COLUMN org_id TEXT;
CREATE INDEX privacy_audit_org ON privacy_audit (org_id, seq);

ALTER TABLE legal_requests ADD COLUMN org_id TEXT;
CREATE INDEX legal_requests_org ON legal_requests (org_id, received_at);

-- Export links of organizations (org_id) and members (user_id) as well as of accounts and
-- contacts (`account` is '' for the former).
ALTER TABLE export_links ADD COLUMN org_id TEXT;
ALTER TABLE export_links ADD COLUMN user_id TEXT;
CREATE INDEX export_links_org ON export_links (org_id);
CREATE INDEX export_links_user ON export_links (user_id);

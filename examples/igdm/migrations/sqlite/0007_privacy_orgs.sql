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

-- Rows written before this migration: legal requests and export links belong to their account's
-- organization; the register and the receipts (which hold pseudonyms only) to the operator's.
UPDATE legal_requests SET org_id = COALESCE(
    (SELECT a.org_id FROM accounts a WHERE a.id = legal_requests.account), 'bootstrap');
UPDATE export_links SET org_id = COALESCE(
    (SELECT a.org_id FROM accounts a WHERE a.id = export_links.account), 'bootstrap');
UPDATE deletion_receipts SET org_id = 'bootstrap';
UPDATE privacy_audit SET org_id = 'bootstrap';

-- Row-level security for the scale-out tables (0005), like every other table: the application
-- role (`database_app_role`) sees the leases of its organization's accounts; the instances'
-- heartbeats are the owner role's only. Keep in step with ../sqlite/0008_scale_rls.sql.
ALTER TABLE account_leases ENABLE ROW LEVEL SECURITY;
CREATE POLICY igdm_tenant ON account_leases USING (account IN
    (SELECT id FROM accounts WHERE org_id = current_setting('igdm.org_id', true)));

ALTER TABLE service_instances ENABLE ROW LEVEL SECURITY;

-- PostgreSQL's 0008 adds row-level security to the scale-out tables; SQLite has no row-level
-- security (the application scopes every query by organization). Kept so that both folders
-- hold the same versions.
SELECT 1;

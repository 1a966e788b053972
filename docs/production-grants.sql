-- Egenvård sync: the database role the service runs with in production (PostgreSQL).
--
-- Run as the owner of the schema (the role that runs `selfcare migrate`), connected to the
-- service's database, after every migration (new tables get the app's grants from the
-- GRANT ... ON ALL TABLES line; the audit REVOKEs are per table and stay).
-- The service connects as selfcare_app; it owns nothing, so it cannot grant itself more.
-- Set its password separately: ALTER ROLE selfcare_app PASSWORD '…';
--
-- The audit tables are append-only for the service: INSERT and SELECT, never UPDATE, DELETE
-- or TRUNCATE. audit_head (the chain's end, one row) is read FOR UPDATE and updated on every
-- append, so it keeps UPDATE; it cannot be deleted. Whoever can still change the audit rows
-- (the owner, a superuser) is caught by the keyed chain and the anchors (README, "Audit").

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'selfcare_app') THEN
        CREATE ROLE selfcare_app LOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO selfcare_app', current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO selfcare_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO selfcare_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO selfcare_app;

REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_subjects FROM selfcare_app;
REVOKE DELETE, TRUNCATE ON audit_head FROM selfcare_app;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM selfcare_app;

-- pbiport schema 14: why a Power BI connection needs a reconnect.
-- The status of a connection is stored once and every endpoint reads it (the connection list
-- and the check alike). Whichever path learns that a connection can no longer be used (Entra
-- refused its refresh token, the organization's app changed, the key ring cannot open its
-- tokens) sets status = 'needs_reconnect' and says why here; NULL while it is active.
ALTER TABLE user_datasource_connection ADD COLUMN status_reason TEXT;

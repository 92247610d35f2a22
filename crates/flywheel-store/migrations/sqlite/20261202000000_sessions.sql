-- flywheel store, version 20261202000000: what interactive sign-in needs.
-- Sessions remember the groups they signed in with; passkeys the role their
-- owner held when registering them; short-lived, single-use challenges
-- (OIDC state and nonce, WebAuthn ceremonies, the bootstrap sign-in) live
-- here so that every replica can finish a ceremony another one started.
ALTER TABLE sessions ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
CREATE INDEX sessions_expiry ON sessions (expires_at);

ALTER TABLE passkeys ADD COLUMN role TEXT NOT NULL DEFAULT 'viewer'
    CHECK (role IN ('viewer', 'operator', 'admin'));

CREATE TABLE auth_challenges (
    id_hash    TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    data       TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX auth_challenges_expiry ON auth_challenges (expires_at);

-- Facts that outlive the rows that established them, such as "an admin has
-- signed in" (sessions are deleted on sign-out; the fact stays).
CREATE TABLE store_facts (
    name     TEXT PRIMARY KEY,
    value    TEXT NOT NULL,
    set_at   TEXT NOT NULL
);

-- Web sign-in: argon2 password hashes (PHC strings) and server-side sessions. A session is
-- stored under the SHA-256 of its id (the cookie value), never the id itself.
CREATE TABLE user_passwords (
    user_name  TEXT    PRIMARY KEY REFERENCES users (name),
    hash       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE web_sessions (
    id_hash    TEXT    PRIMARY KEY,
    user_name  TEXT    NOT NULL REFERENCES users (name),
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

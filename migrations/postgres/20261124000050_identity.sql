-- Identity: users with roles (everywhere or per workspace), one-time link codes, and links
-- from platform identities (Telegram, Discord user ids) to users.

CREATE TABLE users (
    name       TEXT    PRIMARY KEY,
    role       TEXT    NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE user_roles (
    user_name TEXT NOT NULL REFERENCES users (name),
    workspace TEXT NOT NULL,
    role      TEXT NOT NULL,
    PRIMARY KEY (user_name, workspace)
);

CREATE TABLE link_codes (
    code       TEXT    PRIMARY KEY,
    user_name  TEXT    NOT NULL REFERENCES users (name),
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE identities (
    front       TEXT    NOT NULL,
    external_id TEXT    NOT NULL,
    user_name   TEXT    NOT NULL REFERENCES users (name),
    linked_at   BIGINT NOT NULL,
    PRIMARY KEY (front, external_id)
);

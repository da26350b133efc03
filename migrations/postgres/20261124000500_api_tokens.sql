-- Personal API tokens for scripts (Authorization: Bearer). Only a SHA-256 of each token is kept.
CREATE TABLE api_tokens (
    token_hash TEXT    PRIMARY KEY,
    user_name  TEXT    NOT NULL REFERENCES users (name),
    label      TEXT    NOT NULL,
    created_at BIGINT NOT NULL
);

-- Envelope encryption, provider credentials and models.

-- One random data key per workspace, wrapped (AES-256-GCM) by the master key `key_id` names.
CREATE TABLE workspace_keys (
    workspace_id  uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    key_id        text NOT NULL,
    wrapped_key   bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    rewrapped_at  timestamptz
);

CREATE TABLE credentials (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider      text NOT NULL,
    name          text NOT NULL,
    -- Non-secret fields of the provider's schema, in clear.
    config        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Secret fields: name -> base64(nonce || AES-256-GCM ciphertext) under the workspace key,
    -- bound to (workspace, credential, field) by the AAD.
    secrets       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT credentials_name_key UNIQUE (workspace_id, provider, name),
    -- Targets of the models' composite foreign key (same workspace, same provider).
    CONSTRAINT credentials_scope_key UNIQUE (workspace_id, provider, id)
);
CREATE INDEX credentials_list_idx ON credentials (workspace_id, created_at, id);

CREATE TABLE models (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider        text NOT NULL,
    name            text NOT NULL,
    upstream_model  text NOT NULL,
    model_type      text NOT NULL CHECK (model_type IN ('llm', 'text-embedding')),
    credential_id   uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT models_name_key UNIQUE (workspace_id, name),
    -- The default credential belongs to the same workspace and provider, and cannot be
    -- deleted while a model uses it.
    CONSTRAINT models_credential_fkey FOREIGN KEY (workspace_id, provider, credential_id)
        REFERENCES credentials (workspace_id, provider, id) ON DELETE RESTRICT
);
CREATE INDEX models_list_idx ON models (workspace_id, created_at, id);
CREATE INDEX models_credential_idx ON models (credential_id);

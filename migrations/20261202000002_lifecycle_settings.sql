-- Credential lifecycle settings (DESIGN §14): stored, validated and shown; dispatch enforces
-- them later. Existing rows get the defaults; the CHECKs repeat the API's bounds.

-- How long a credential whose quota ran out stays out of every pool.
ALTER TABLE credentials ADD COLUMN quota_cooldown_seconds integer NOT NULL DEFAULT 3600
    CONSTRAINT credentials_quota_cooldown_seconds_check
    CHECK (quota_cooldown_seconds BETWEEN 60 AND 604800);

-- Waiting for a credential instead of answering 429, and sticky routing for prompt caches.
ALTER TABLE lb_configs
    ADD COLUMN max_wait_ms integer NOT NULL DEFAULT 0
        CONSTRAINT lb_configs_max_wait_ms_check CHECK (max_wait_ms BETWEEN 0 AND 60000),
    ADD COLUMN affinity text NOT NULL DEFAULT 'none'
        CONSTRAINT lb_configs_affinity_check CHECK (affinity IN ('none', 'session')),
    ADD COLUMN affinity_ttl_seconds integer NOT NULL DEFAULT 300
        CONSTRAINT lb_configs_affinity_ttl_seconds_check
        CHECK (affinity_ttl_seconds BETWEEN 30 AND 86400);

-- Proactive per-minute limits of an entry; NULL is no limit.
ALTER TABLE lb_entries
    ADD COLUMN rpm integer
        CONSTRAINT lb_entries_rpm_check CHECK (rpm IS NULL OR rpm BETWEEN 1 AND 1000000),
    ADD COLUMN tpm bigint
        CONSTRAINT lb_entries_tpm_check CHECK (tpm IS NULL OR tpm BETWEEN 1 AND 1000000000);

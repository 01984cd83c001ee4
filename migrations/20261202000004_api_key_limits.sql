-- Per-key limits (DESIGN §15): a request rate and a token rate per UTC minute, and a budget
-- per UTC month in tokens or in US dollars. Null: no limit. The API bounds them the same way.
ALTER TABLE api_keys
    ADD COLUMN rpm integer
        CONSTRAINT api_keys_rpm_check CHECK (rpm IS NULL OR rpm BETWEEN 1 AND 1000000),
    ADD COLUMN tpm bigint
        CONSTRAINT api_keys_tpm_check CHECK (tpm IS NULL OR tpm BETWEEN 1 AND 1000000000),
    ADD COLUMN monthly_token_budget bigint
        CONSTRAINT api_keys_monthly_token_budget_check
        CHECK (monthly_token_budget IS NULL OR monthly_token_budget BETWEEN 1 AND 1000000000000000),
    ADD COLUMN monthly_budget_usd numeric
        CONSTRAINT api_keys_monthly_budget_usd_check
        CHECK (monthly_budget_usd IS NULL OR monthly_budget_usd BETWEEN 0.01 AND 1000000000);

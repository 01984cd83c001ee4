-- The usage ledger's daily rollup, written in the same transaction as the minutes and hours:
-- a report reads whole days here, whole hours at a range's edges from usage_hours and the
-- partial hours from usage_minutes, so 92 days of a busy workspace is ~92 rows per series.
-- A new table starts empty: the days so far are rolled up from the hours once, here.
CREATE TABLE usage_days (
    workspace_id         uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    day                  timestamptz NOT NULL,
    api_key_id           uuid NOT NULL,
    model_id             uuid NOT NULL,
    credential_id        uuid NOT NULL,
    model_name           text NOT NULL,
    requests             bigint NOT NULL DEFAULT 0,
    errors               bigint NOT NULL DEFAULT 0,
    input_tokens         bigint NOT NULL DEFAULT 0,
    output_tokens        bigint NOT NULL DEFAULT 0,
    cached_input_tokens  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, day, api_key_id, model_id, credential_id)
);
CREATE INDEX usage_days_day_idx ON usage_days (day);

INSERT INTO usage_days (workspace_id, day, api_key_id, model_id, credential_id, model_name,
                        requests, errors, input_tokens, output_tokens, cached_input_tokens)
SELECT workspace_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', api_key_id,
       model_id, credential_id, min(model_name), sum(requests), sum(errors), sum(input_tokens),
       sum(output_tokens), sum(cached_input_tokens)
FROM usage_hours
GROUP BY 1, 2, 3, 4, 5;

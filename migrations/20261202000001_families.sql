-- API families: more model types, and a per-entry upstream model name for mixed pools
-- (an Azure deployment and an OpenAI key serving one model under different names).
ALTER TABLE models DROP CONSTRAINT models_model_type_check;
ALTER TABLE models ADD CONSTRAINT models_model_type_check CHECK (model_type IN
    ('llm', 'text-embedding', 'rerank', 'speech2text', 'tts', 'moderation', 'image'));

ALTER TABLE lb_entries ADD COLUMN upstream_model text
    CHECK (upstream_model IS NULL OR length(upstream_model) BETWEEN 1 AND 200);

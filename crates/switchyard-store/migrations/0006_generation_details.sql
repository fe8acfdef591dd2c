-- What `GET /generation` reports besides the served attempt: the API the request came through
-- (`completions`, `embeddings`), the client's User-Agent, and every attempt of the request
-- (fallbacks included) as a JSON array of {provider_name, status, model_permaslug, is_byok}.
ALTER TABLE generations ADD COLUMN api_type TEXT;
ALTER TABLE generations ADD COLUMN user_agent TEXT;
ALTER TABLE generations ADD COLUMN provider_responses TEXT;

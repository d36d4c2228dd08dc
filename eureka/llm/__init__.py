"""The LLM stage: the client (litellm, embedded model, replay, cache), prompt files, code
extraction from replies, and the environment context shown to the model."""

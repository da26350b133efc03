//! Krake's model access: OpenAI-compatible providers through async-openai.

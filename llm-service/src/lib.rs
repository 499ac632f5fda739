//! llm-service (being built).

//! Krake's retrieval: chunking, ingestion, embedders and vector stores.

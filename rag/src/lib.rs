//! # krake-rag
//!
//! Krake's retrieval: documents in, cited passages out, always within one workspace.
//!
//! - [`cache`]: an on-disk embedding cache.
//! - [`chunk`]: Markdown-aware chunking with overlap.
//! - [`sparse`]: the BM25 analyser and sparse vectors.
//! - [`embed`]: the [`Embedder`](embed::Embedder) port; [`minilm`]: the local offline model.
//! - [`store`]: the [`VectorStore`](store::VectorStore) port and an in-memory store;
//!   [`edge`]: embedded Qdrant (the default); [`server`]: a Qdrant server over gRPC.
//! - [`ingest`]: chunk, embed and store, kept in step with sources by content hash.
//! - [`retrieve`]: hybrid search, fusion, token budget; fills core's `Retriever` port.
//! - [`settings`]: `[rag]` in the config file (store and embedder choice).
//! - [`knowledge`]: the knowledge base put together from `[rag]`, and the on-demand
//!   `Retriever`/`KnowledgeBase` that `krake serve` uses.

pub mod bert;
pub mod cache;
pub mod chunk;
pub mod edge;
pub mod embed;
pub mod eval;
pub mod extract;
pub mod ingest;
pub mod knowledge;
pub mod minilm;
pub mod retrieve;
pub mod server;
pub mod settings;
pub mod sparse;
pub mod store;

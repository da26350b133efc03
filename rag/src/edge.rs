//! Embedded Qdrant ([`qdrant_edge`]) under the data directory: the default [`VectorStore`].
//!
//! One shard holds every workspace's chunks: a named dense vector (`dense`, cosine) and a sparse
//! BM25 vector (`bm25`, IDF applied by Qdrant), payload indexes on `workspace`, `source_kind`
//! and `source`. Every search carries the workspace filter. The shard is blocking, so each call
//! runs on tokio's blocking pool; new points are searched by brute force until
//! [`VectorStore::optimize`] builds the HNSW index (run it in the background after ingestion).

use crate::store::VectorStore;
use crate::store::{
    ChunkMeta, ChunkRecord, Hit, HybridQuery, Scope, SparseVector, StoreError, StoredDocument,
};
use async_trait::async_trait;
use qdrant_edge::{
    Condition, CreateIndex, Distance, EdgeConfigBuilder, EdgeShard, EdgeSparseVectorParamsBuilder,
    EdgeVectorParamsBuilder, FieldCondition, FieldIndexOperations, Filter, Fusion, JsonPath, Match,
    Modifier, NamedQuery, PayloadFieldSchema, PayloadSchemaType, PointId, PointInsertOperations,
    PointOperations, PointStructPersisted, Prefetch, QueryEnum, QueryRequest, ScoredPoint,
    ScoringQuery, ScrollRequest, UpdateOperation, VectorInternal, WithPayloadInterface, WithVector,
};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The dense vector's name.
pub const DENSE: &str = "dense";
/// The sparse vector's name.
pub const SPARSE: &str = "bm25";

/// Embedded Qdrant in a directory.
#[derive(Clone)]
pub struct EdgeStore {
    shard: Arc<EdgeShard>,
    path: PathBuf,
}

impl std::fmt::Debug for EdgeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeStore")
            .field("path", &self.path)
            .finish()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl EdgeStore {
    /// Opens the shard in `dir`, creating it (and its payload indexes) when absent. The dense
    /// vectors have `dimensions` dimensions; an existing shard made for another size is an
    /// error that says how to start over.
    pub fn open(dir: &Path, dimensions: usize) -> Result<Self, StoreError> {
        let exists = dir.join("edge_config.json").exists();
        let shard = if exists {
            let shard = EdgeShard::load(dir, None).map_err(backend)?;
            let size = shard.config().vectors.get(DENSE).map(|v| v.size);
            if size != Some(dimensions) {
                return Err(StoreError::Backend(format!(
                    "the knowledge base in {} was built for {} dimensions, the embedder gives \
                     {dimensions}; move that directory away and ingest again",
                    dir.display(),
                    size.map_or("other".to_owned(), |s| s.to_string())
                )));
            }
            shard
        } else {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
            })?;
            let config = EdgeConfigBuilder::new()
                .vector(
                    DENSE,
                    EdgeVectorParamsBuilder::new(dimensions, Distance::Cosine).build(),
                )
                .sparse_vector(
                    SPARSE,
                    EdgeSparseVectorParamsBuilder::new()
                        .modifier(Modifier::Idf)
                        .build(),
                )
                .build();
            let shard = EdgeShard::new(dir, config).map_err(backend)?;
            for field in ["workspace", "source_kind", "source"] {
                shard
                    .update(UpdateOperation::FieldIndexOperation(
                        FieldIndexOperations::CreateIndex(CreateIndex {
                            field_name: path(field),
                            field_schema: Some(PayloadFieldSchema::FieldType(
                                PayloadSchemaType::Keyword,
                            )),
                        }),
                    ))
                    .map_err(backend)?;
            }
            shard
        };
        Ok(Self {
            shard: Arc::new(shard),
            path: dir.to_owned(),
        })
    }

    async fn query(&self, request: QueryRequest) -> Result<Vec<Hit>, StoreError> {
        let shard = self.shard.clone();
        let points = blocking(move || shard.query(request).map_err(backend)).await?;
        Ok(points.into_iter().filter_map(hit).collect())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("the store task failed: {e}")))?
}

/// A payload key; ours are plain identifiers, which always parse.
fn path(field: &str) -> JsonPath {
    JsonPath::try_from(field).unwrap_or_else(|()| {
        JsonPath::try_from("invalid").unwrap_or_else(|()| unreachable!("a plain key parses"))
    })
}

fn keyword(field: &str, value: &str) -> Condition {
    Condition::Field(FieldCondition::new_match(
        path(field),
        Match::from(value.to_owned()),
    ))
}

fn scope_filter(scope: &Scope) -> Filter {
    let mut must = vec![keyword("workspace", &scope.workspace)];
    if let Some(kind) = &scope.source_kind {
        must.push(keyword("source_kind", kind));
    }
    Filter {
        must: Some(must),
        ..Filter::default()
    }
}

fn payload(meta: &ChunkMeta) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("workspace".into(), meta.workspace.clone().into());
    m.insert("source_kind".into(), meta.source_kind.clone().into());
    m.insert("source".into(), meta.source.clone().into());
    m.insert("title".into(), meta.title.clone().into());
    m.insert("position".into(), meta.position.into());
    m.insert("time".into(), meta.time.into());
    m.insert("doc_hash".into(), meta.doc_hash.clone().into());
    m.insert("text".into(), meta.text.clone().into());
    m
}

fn meta(p: &Map<String, Value>) -> Option<ChunkMeta> {
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    Some(ChunkMeta {
        workspace: s("workspace")?,
        source_kind: s("source_kind")?,
        source: s("source")?,
        title: s("title").unwrap_or_default(),
        position: p
            .get("position")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())?,
        time: p.get("time").and_then(Value::as_i64).unwrap_or_default(),
        doc_hash: s("doc_hash").unwrap_or_default(),
        text: s("text").unwrap_or_default(),
    })
}

fn hit(p: ScoredPoint) -> Option<Hit> {
    let PointId::NumId(id) = p.id else {
        return None;
    };
    Some(Hit {
        id,
        score: p.score,
        meta: meta(&p.payload?.0.into_iter().collect())?,
    })
}

fn sparse(v: &SparseVector) -> Result<VectorInternal, StoreError> {
    qdrant_edge::SparseVector::new(v.indices.clone(), v.values.clone())
        .map(VectorInternal::Sparse)
        .map_err(|e| StoreError::Backend(format!("bad sparse vector: {e}")))
}

fn nearest(using: &str, query: VectorInternal, filter: Filter, limit: usize) -> QueryRequest {
    QueryRequest {
        prefetches: Vec::new(),
        query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
            query,
            using: Some(using.to_owned()),
        }))),
        filter: Some(filter),
        score_threshold: None,
        limit,
        offset: 0,
        params: None,
        with_vector: WithVector::Bool(false),
        with_payload: WithPayloadInterface::Bool(true),
    }
}

#[async_trait]
impl VectorStore for EdgeStore {
    async fn upsert(&self, chunks: Vec<ChunkRecord>) -> Result<(), StoreError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let mut points = Vec::with_capacity(chunks.len());
        for c in chunks {
            let mut vectors: Vec<(String, qdrant_edge::Vector)> =
                vec![(SPARSE.to_owned(), qdrant_edge::Vector(sparse(&c.sparse)?))];
            if let Some(d) = c.dense {
                vectors.push((DENSE.to_owned(), qdrant_edge::Vector::new_dense(d)));
            }
            let point =
                qdrant_edge::PointStruct::new(c.id, vectors, Value::Object(payload(&c.meta)));
            points.push(PointStructPersisted::from(point));
        }
        let shard = self.shard.clone();
        blocking(move || {
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
                ))
                .map_err(backend)
        })
        .await
    }

    async fn delete_document(
        &self,
        workspace: &str,
        source_kind: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let filter = Filter {
            must: Some(vec![
                keyword("workspace", workspace),
                keyword("source_kind", source_kind),
                keyword("source", source),
            ]),
            ..Filter::default()
        };
        let shard = self.shard.clone();
        blocking(move || {
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::DeletePointsByFilter(filter),
                ))
                .map_err(backend)
        })
        .await
    }

    async fn documents(&self, scope: &Scope) -> Result<Vec<StoredDocument>, StoreError> {
        let mut filter = scope_filter(scope);
        if let Some(must) = filter.must.as_mut() {
            must.push(Condition::Field(FieldCondition::new_match(
                path("position"),
                Match::from(0i64),
            )));
        }
        let shard = self.shard.clone();
        blocking(move || {
            let mut docs = BTreeSet::new();
            let mut offset = None;
            loop {
                let (records, next) = shard
                    .scroll(ScrollRequest {
                        offset,
                        limit: Some(1000),
                        filter: Some(filter.clone()),
                        with_payload: Some(WithPayloadInterface::Bool(true)),
                        with_vector: WithVector::Bool(false),
                        order_by: None,
                    })
                    .map_err(backend)?;
                for r in records {
                    if let Some(m) = r.payload.and_then(|p| meta(&p.0.into_iter().collect())) {
                        docs.insert(StoredDocument {
                            source_kind: m.source_kind,
                            source: m.source,
                            doc_hash: m.doc_hash,
                        });
                    }
                }
                match next {
                    Some(n) => offset = Some(n),
                    None => break,
                }
            }
            Ok(docs.into_iter().collect())
        })
        .await
    }

    async fn search_dense(
        &self,
        scope: &Scope,
        vector: &[f32],
        limit: usize,
    ) -> Result<Vec<Hit>, StoreError> {
        self.query(nearest(
            DENSE,
            VectorInternal::Dense(vector.to_vec()),
            scope_filter(scope),
            limit,
        ))
        .await
    }

    async fn search_sparse(
        &self,
        scope: &Scope,
        vector: &SparseVector,
        limit: usize,
    ) -> Result<Vec<Hit>, StoreError> {
        if vector.indices.is_empty() {
            return Ok(Vec::new());
        }
        self.query(nearest(SPARSE, sparse(vector)?, scope_filter(scope), limit))
            .await
    }

    async fn search_hybrid(
        &self,
        scope: &Scope,
        query: &HybridQuery<'_>,
    ) -> Result<Vec<Hit>, StoreError> {
        let filter = scope_filter(scope);
        let prefetch = |using: &str, q: VectorInternal| Prefetch {
            prefetches: Vec::new(),
            query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
                query: q,
                using: Some(using.to_owned()),
            }))),
            limit: query.candidates,
            params: None,
            filter: Some(filter.clone()),
            score_threshold: None,
        };
        let mut prefetches = vec![prefetch(DENSE, VectorInternal::Dense(query.dense.to_vec()))];
        if !query.sparse.indices.is_empty() {
            prefetches.push(prefetch(SPARSE, sparse(query.sparse)?));
        }
        self.query(QueryRequest {
            prefetches,
            query: Some(ScoringQuery::Fusion(Fusion::Rrf {
                k: query.rrf_k.max(1) as usize,
                weights: None,
            })),
            filter: Some(filter.clone()),
            score_threshold: None,
            limit: query.limit,
            offset: 0,
            params: None,
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Bool(true),
        })
        .await
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let shard = self.shard.clone();
        blocking(move || Ok(shard.info().points_count)).await
    }

    /// Writes everything to disk.
    async fn flush(&self) -> Result<(), StoreError> {
        let shard = self.shard.clone();
        blocking(move || {
            shard.flush();
            Ok(())
        })
        .await
    }

    /// Builds the HNSW and payload indexes for what was added (blocking; seconds per 10,000
    /// chunks). Searches are correct before, only slower.
    async fn optimize(&self) -> Result<(), StoreError> {
        let shard = self.shard.clone();
        blocking(move || shard.optimize().map(|_| ()).map_err(backend)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn edge_store_passes_the_shared_checks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EdgeStore::open(&dir.path().join("kb"), 16).expect("open");
        crate::store::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn edge_store_keeps_chunks_across_a_restart_and_checks_dimensions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kb");
        {
            let store = EdgeStore::open(&path, 16).expect("open");
            crate::store::conformance::run(&store).await;
            store.flush().await.expect("flush");
        }
        let store = EdgeStore::open(&path, 16).expect("reopen");
        assert_eq!(store.count().await.expect("count"), 3);
        let docs = store
            .documents(&Scope {
                workspace: "lunavo".into(),
                source_kind: None,
            })
            .await
            .expect("documents");
        assert_eq!(docs.len(), 2, "{docs:?}");
        drop(store);
        let err = EdgeStore::open(&path, 384).expect_err("other size");
        assert!(err.to_string().contains("ingest again"), "{err}");
    }
}

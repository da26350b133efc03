//! A Qdrant server ([`qdrant_client`], gRPC) as the [`VectorStore`], for knowledge bases that
//! outgrow one machine's embedded store.
//!
//! The collection is created on start when absent: a named dense vector (`dense`, cosine) and a
//! sparse BM25 vector (`bm25`, IDF applied by Qdrant), payload indexes (keyword) on
//! `workspace`, `source_kind` and `source`. Every search carries the workspace filter as exact
//! keyword matches; hybrid queries prefetch both vectors and fuse them with RRF on the server.

use crate::edge::{DENSE, SPARSE};
use crate::store::{
    ChunkMeta, ChunkRecord, Hit, HybridQuery, Scope, SparseVector, StoreError, StoredDocument,
    VectorStore,
};
use async_trait::async_trait;
use qdrant_client::Qdrant;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter, Modifier, NamedVectors, PointId, PointStruct,
    PrefetchQueryBuilder, Query, QueryPointsBuilder, Rrf, ScoredPoint, ScrollPointsBuilder,
    SparseVectorParamsBuilder, SparseVectorsConfigBuilder, UpsertPointsBuilder, Value, VectorInput,
    VectorParamsBuilder, VectorsConfigBuilder,
};
use std::collections::{BTreeSet, HashMap};

/// The payload fields that get a keyword index.
pub const INDEXED_FIELDS: [&str; 3] = ["workspace", "source_kind", "source"];

/// How to reach the server.
#[derive(Clone)]
pub struct ServerConfig {
    /// The gRPC URL, e.g. `http://127.0.0.1:6334`.
    pub url: String,
    /// The collection (created when absent).
    pub collection: String,
    /// The API key, if the server wants one.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("url", &self.url)
            .field("collection", &self.collection)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A collection on a Qdrant server.
#[derive(Clone)]
pub struct QdrantStore {
    client: std::sync::Arc<Qdrant>,
    collection: String,
    url: String,
}

impl std::fmt::Debug for QdrantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantStore")
            .field("url", &self.url)
            .field("collection", &self.collection)
            .finish()
    }
}

fn backend(what: &str) -> impl Fn(qdrant_client::QdrantError) -> StoreError + '_ {
    move |e| StoreError::Backend(format!("qdrant server: {what}: {e}"))
}

impl QdrantStore {
    /// Connects, and creates the collection (and its payload indexes) when it does not exist.
    /// An existing collection made for another vector size is an error that says so.
    pub async fn open(config: &ServerConfig, dimensions: usize) -> Result<Self, StoreError> {
        let mut builder = Qdrant::from_url(&config.url).skip_compatibility_check();
        if let Some(key) = &config.api_key {
            builder = builder.api_key(key.clone());
        }
        let client = builder
            .build()
            .map_err(|e| StoreError::Backend(format!("qdrant server at {}: {e}", config.url)))?;
        let store = Self {
            client: std::sync::Arc::new(client),
            collection: config.collection.clone(),
            url: config.url.clone(),
        };
        store.ensure_collection(dimensions).await?;
        Ok(store)
    }

    async fn ensure_collection(&self, dimensions: usize) -> Result<(), StoreError> {
        let c = &self.collection;
        let exists = self
            .client
            .collection_exists(c)
            .await
            .map_err(|e| StoreError::Backend(format!("qdrant server at {}: {e}", self.url)))?;
        if exists {
            return self.check_dimensions(dimensions).await;
        }
        let mut dense = VectorsConfigBuilder::default();
        dense.add_named_vector_params(
            DENSE,
            VectorParamsBuilder::new(dimensions as u64, Distance::Cosine),
        );
        let mut sparse = SparseVectorsConfigBuilder::default();
        sparse.add_named_vector_params(
            SPARSE,
            SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
        );
        self.client
            .create_collection(
                CreateCollectionBuilder::new(c)
                    .vectors_config(dense)
                    .sparse_vectors_config(sparse),
            )
            .await
            .map_err(backend("creating the collection"))?;
        for field in INDEXED_FIELDS {
            self.client
                .create_field_index(
                    CreateFieldIndexCollectionBuilder::new(c, field, FieldType::Keyword).wait(true),
                )
                .await
                .map_err(backend("creating a payload index"))?;
        }
        Ok(())
    }

    async fn check_dimensions(&self, dimensions: usize) -> Result<(), StoreError> {
        use qdrant_client::qdrant::vectors_config::Config;
        let info = self
            .client
            .collection_info(&self.collection)
            .await
            .map_err(backend("reading the collection"))?;
        let size = info
            .result
            .and_then(|r| r.config)
            .and_then(|c| c.params)
            .and_then(|p| p.vectors_config)
            .and_then(|v| v.config)
            .and_then(|c| match c {
                Config::ParamsMap(m) => m.map.get(DENSE).map(|p| p.size),
                Config::Params(_) => None,
            });
        if size != Some(dimensions as u64) {
            return Err(StoreError::Backend(format!(
                "the Qdrant collection `{}` holds {} dense vectors, the embedder gives \
                 {dimensions}; use another collection (qdrant_collection) or delete this one",
                self.collection,
                size.map_or("no named `dense`".to_owned(), |s| format!("{s}-dimension"))
            )));
        }
        Ok(())
    }

    async fn query(&self, request: QueryPointsBuilder) -> Result<Vec<Hit>, StoreError> {
        let res = self
            .client
            .query(request.with_payload(true))
            .await
            .map_err(backend("query"))?;
        Ok(res.result.into_iter().filter_map(hit).collect())
    }
}

fn keyword(field: &str, value: &str) -> Condition {
    // `matches` with a string is an exact keyword match (not `matches_text`, full text).
    Condition::matches(field, value.to_owned())
}

fn scope_filter(scope: &Scope) -> Filter {
    let mut must = vec![keyword("workspace", &scope.workspace)];
    if let Some(kind) = &scope.source_kind {
        must.push(keyword("source_kind", kind));
    }
    Filter::must(must)
}

fn payload(meta: &ChunkMeta) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
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

fn meta(p: HashMap<String, Value>) -> Option<ChunkMeta> {
    let json: serde_json::Map<String, serde_json::Value> =
        p.into_iter().map(|(k, v)| (k, v.into_json())).collect();
    let s = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    Some(ChunkMeta {
        workspace: s("workspace")?,
        source_kind: s("source_kind")?,
        source: s("source")?,
        title: s("title").unwrap_or_default(),
        position: json
            .get("position")
            .and_then(serde_json::Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())?,
        time: json
            .get("time")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or_default(),
        doc_hash: s("doc_hash").unwrap_or_default(),
        text: s("text").unwrap_or_default(),
    })
}

fn num_id(id: Option<PointId>) -> Option<u64> {
    match id?.point_id_options? {
        PointIdOptions::Num(n) => Some(n),
        PointIdOptions::Uuid(_) => None,
    }
}

fn hit(p: ScoredPoint) -> Option<Hit> {
    Some(Hit {
        id: num_id(p.id)?,
        score: p.score,
        meta: meta(p.payload)?,
    })
}

fn sparse_input(v: &SparseVector) -> VectorInput {
    VectorInput::new_sparse(v.indices.clone(), v.values.clone())
}

#[async_trait]
impl VectorStore for QdrantStore {
    async fn upsert(&self, chunks: Vec<ChunkRecord>) -> Result<(), StoreError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let points: Vec<PointStruct> = chunks
            .into_iter()
            .map(|c| {
                let mut vectors = NamedVectors::default().add_vector(
                    SPARSE,
                    qdrant_client::qdrant::Vector::new_sparse(
                        c.sparse.indices.clone(),
                        c.sparse.values.clone(),
                    ),
                );
                if let Some(d) = c.dense {
                    vectors =
                        vectors.add_vector(DENSE, qdrant_client::qdrant::Vector::new_dense(d));
                }
                PointStruct::new(c.id, vectors, payload(&c.meta))
            })
            .collect();
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, points).wait(true))
            .await
            .map_err(backend("upsert"))?;
        Ok(())
    }

    async fn delete_document(
        &self,
        workspace: &str,
        source_kind: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let filter = Filter::must([
            keyword("workspace", workspace),
            keyword("source_kind", source_kind),
            keyword("source", source),
        ]);
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(filter)
                    .wait(true),
            )
            .await
            .map_err(backend("delete"))?;
        Ok(())
    }

    async fn documents(&self, scope: &Scope) -> Result<Vec<StoredDocument>, StoreError> {
        let mut filter = scope_filter(scope);
        filter.must.push(Condition::matches("position", 0i64));
        let mut docs = BTreeSet::new();
        let mut offset: Option<PointId> = None;
        loop {
            let mut req = ScrollPointsBuilder::new(&self.collection)
                .filter(filter.clone())
                .limit(1000)
                .with_payload(true);
            if let Some(o) = offset.take() {
                req = req.offset(o);
            }
            let res = self.client.scroll(req).await.map_err(backend("scroll"))?;
            for p in res.result {
                if let Some(m) = meta(p.payload) {
                    docs.insert(StoredDocument {
                        source_kind: m.source_kind,
                        source: m.source,
                        doc_hash: m.doc_hash,
                    });
                }
            }
            match res.next_page_offset {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        Ok(docs.into_iter().collect())
    }

    async fn search_dense(
        &self,
        scope: &Scope,
        vector: &[f32],
        limit: usize,
    ) -> Result<Vec<Hit>, StoreError> {
        self.query(
            QueryPointsBuilder::new(&self.collection)
                .query(Query::new_nearest(vector.to_vec()))
                .using(DENSE)
                .filter(scope_filter(scope))
                .limit(limit as u64),
        )
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
        self.query(
            QueryPointsBuilder::new(&self.collection)
                .query(Query::new_nearest(sparse_input(vector)))
                .using(SPARSE)
                .filter(scope_filter(scope))
                .limit(limit as u64),
        )
        .await
    }

    async fn search_hybrid(
        &self,
        scope: &Scope,
        query: &HybridQuery<'_>,
    ) -> Result<Vec<Hit>, StoreError> {
        let filter = scope_filter(scope);
        let mut req = QueryPointsBuilder::new(&self.collection).add_prefetch(
            PrefetchQueryBuilder::default()
                .query(Query::new_nearest(query.dense.to_vec()))
                .using(DENSE)
                .filter(filter.clone())
                .limit(query.candidates as u64),
        );
        if !query.sparse.indices.is_empty() {
            req = req.add_prefetch(
                PrefetchQueryBuilder::default()
                    .query(Query::new_nearest(sparse_input(query.sparse)))
                    .using(SPARSE)
                    .filter(filter.clone())
                    .limit(query.candidates as u64),
            );
        }
        self.query(
            req.query(Query::new_rrf(Rrf {
                k: Some(query.rrf_k),
                weights: Vec::new(),
            }))
            .filter(filter)
            .limit(query.limit as u64),
        )
        .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.client
            .health_check()
            .await
            .map(|_| ())
            .map_err(backend("health check"))
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let res = self
            .client
            .count(CountPointsBuilder::new(&self.collection).exact(true))
            .await
            .map_err(backend("count"))?;
        Ok(res.result.map_or(0, |r| r.count as usize))
    }
}

//! A local fake of a Qdrant server's gRPC API, built from the tonic service traits that
//! `qdrant-client` exports (`collections_server`, `points_server`, `qdrant_server`), on
//! 127.0.0.1 port 0.
//!
//! It implements the calls Krake's server adapter makes (health check, collection exists /
//! create / get, payload index creation, upsert, delete by filter, scroll, count, and query:
//! nearest on a named dense or sparse vector, or prefetches fused by RRF) with simple in-memory
//! semantics: cosine for dense vectors, IDF-weighted dot product for sparse ones (Qdrant's
//! `idf` modifier), RRF as Qdrant scores it (`Σ 1 / (k + i)`, `i` the 0-based rank). It checks
//! what a real server would refuse (unknown collections and vector names, wrong sizes) and what
//! Krake must get right: filters are exact keyword (or integer) matches only, never full-text.
//! Every request is recorded in [`FakeState`] so tests can check mappings.

use qdrant_client::qdrant as q;
use qdrant_client::qdrant::collections_server::{Collections, CollectionsServer};
use qdrant_client::qdrant::points_server::{Points, PointsServer};
use qdrant_client::qdrant::qdrant_server::{Qdrant, QdrantServer};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

/// A stored point.
#[derive(Debug, Clone, Default)]
pub struct FakePoint {
    /// Its payload.
    pub payload: HashMap<String, q::Value>,
    /// Named dense vectors.
    pub dense: HashMap<String, Vec<f32>>,
    /// Named sparse vectors (dimension → weight).
    pub sparse: HashMap<String, BTreeMap<u32, f32>>,
}

/// A collection: how it was created, its payload indexes and its points.
#[derive(Debug, Clone, Default)]
pub struct FakeCollection {
    /// The create request as received.
    pub create: q::CreateCollection,
    /// Payload indexes: field → `FieldType` (as its i32).
    pub indexes: BTreeMap<String, i32>,
    /// Points by id.
    pub points: BTreeMap<u64, FakePoint>,
}

/// Everything the fake holds and saw.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Collections by name.
    pub collections: BTreeMap<String, FakeCollection>,
    /// The RPCs called, in order (`points/upsert`, …).
    pub calls: Vec<String>,
    /// The `api-key` header of each request.
    pub api_keys: Vec<Option<String>>,
    /// Every query request.
    pub queries: Vec<q::QueryPoints>,
    /// Every filter received (queries, scrolls, deletes, counts).
    pub filters: Vec<q::Filter>,
}

/// A running fake: its URL and state.
#[derive(Debug, Clone)]
pub struct FakeQdrant {
    /// `http://127.0.0.1:PORT`, for `qdrant-client`.
    pub url: String,
    /// What it holds and saw.
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeQdrant {
    /// Starts the fake on a free port; it runs until the test's runtime ends.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let svc = Arc::new(Service {
            state: Arc::new(Mutex::new(FakeState::default())),
        });
        let state = svc.state.clone();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(CollectionsServer::from_arc(svc.clone()))
                .add_service(PointsServer::from_arc(svc.clone()))
                .add_service(QdrantServer::from_arc(svc))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        Self { url, state }
    }

    /// Locks the state for inspection.
    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Service {
    state: Arc<Mutex<FakeState>>,
}

impl Service {
    fn lock<T>(&self, call: &str, req: &Request<T>) -> std::sync::MutexGuard<'_, FakeState> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.calls.push(call.to_owned());
        let key = req
            .metadata()
            .get("api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        s.api_keys.push(key);
        s
    }
}

fn collection<'a>(s: &'a mut FakeState, name: &str) -> Result<&'a mut FakeCollection, Status> {
    s.collections
        .get_mut(name)
        .ok_or_else(|| Status::not_found(format!("Collection `{name}` doesn't exist!")))
}

fn ok_points() -> Response<q::PointsOperationResponse> {
    Response::new(q::PointsOperationResponse {
        result: Some(q::UpdateResult {
            operation_id: Some(0),
            status: q::UpdateStatus::Completed as i32,
        }),
        time: 0.0,
        usage: None,
    })
}

fn dense_size(c: &FakeCollection, name: &str) -> Option<u64> {
    match c.create.vectors_config.as_ref()?.config.as_ref()? {
        q::vectors_config::Config::ParamsMap(m) => m.map.get(name).map(|p| p.size),
        q::vectors_config::Config::Params(p) => name.is_empty().then_some(p.size),
    }
}

fn has_sparse(c: &FakeCollection, name: &str) -> bool {
    c.create
        .sparse_vectors_config
        .as_ref()
        .is_some_and(|s| s.map.contains_key(name))
}

fn sparse_map(indices: &[u32], values: &[f32]) -> Result<BTreeMap<u32, f32>, Status> {
    if indices.len() != values.len() {
        return Err(Status::invalid_argument(
            "sparse vector: indices and values differ in length",
        ));
    }
    Ok(indices
        .iter()
        .copied()
        .zip(values.iter().copied())
        .collect())
}

/// Field conditions: exact keyword or integer matches only; anything else is refused, so a
/// full-text match (`matches_text`) in Krake's filters fails the test.
fn matches(
    filter: Option<&q::Filter>,
    payload: &HashMap<String, q::Value>,
) -> Result<bool, Status> {
    use q::condition::ConditionOneOf;
    use q::r#match::MatchValue;
    use q::value::Kind;
    let Some(f) = filter else { return Ok(true) };
    if !f.should.is_empty() || !f.must_not.is_empty() || f.min_should.is_some() {
        return Err(Status::invalid_argument(
            "the fake supports `must` filters only",
        ));
    }
    let mut all = true;
    for c in &f.must {
        let Some(ConditionOneOf::Field(fc)) = &c.condition_one_of else {
            return Err(Status::invalid_argument(
                "only field conditions are supported",
            ));
        };
        let value = payload.get(&fc.key).and_then(|v| v.kind.as_ref());
        let hit = match fc.r#match.as_ref().and_then(|m| m.match_value.as_ref()) {
            Some(MatchValue::Keyword(k)) => matches!(value, Some(Kind::StringValue(s)) if s == k),
            Some(MatchValue::Integer(i)) => matches!(value, Some(Kind::IntegerValue(v)) if v == i),
            other => {
                return Err(Status::invalid_argument(format!(
                    "condition on `{}`: expected an exact keyword or integer match, got {other:?}",
                    fc.key
                )));
            }
        };
        all &= hit;
    }
    Ok(all)
}

enum Input {
    Dense(Vec<f32>),
    Sparse(BTreeMap<u32, f32>),
}

#[allow(deprecated)]
fn vector_of(v: q::Vector) -> Result<Input, Status> {
    match v.vector {
        Some(q::vector::Vector::Dense(d)) => Ok(Input::Dense(d.data)),
        Some(q::vector::Vector::Sparse(s)) => Ok(Input::Sparse(sparse_map(&s.indices, &s.values)?)),
        Some(_) => Err(Status::invalid_argument("only dense and sparse vectors")),
        None => match v.indices {
            Some(ix) => Ok(Input::Sparse(sparse_map(&ix.data, &v.data)?)),
            None => Ok(Input::Dense(v.data)),
        },
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

fn both(a: Option<&q::Filter>, b: Option<&q::Filter>) -> Option<q::Filter> {
    match (a, b) {
        (None, None) => None,
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (Some(x), Some(y)) => {
            let mut f = x.clone();
            f.must.extend(y.must.iter().cloned());
            Some(f)
        }
    }
}

fn sorted(mut v: Vec<(u64, f32)>, limit: usize) -> Vec<(u64, f32)> {
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

/// Runs one query level: nearest on a named vector, or fusion of the prefetches.
fn run(
    c: &FakeCollection,
    prefetch: &[q::PrefetchQuery],
    query: Option<&q::Query>,
    using: Option<&str>,
    filter: Option<&q::Filter>,
    limit: usize,
) -> Result<Vec<(u64, f32)>, Status> {
    use q::query::Variant;
    if !prefetch.is_empty() {
        let mut lists = Vec::new();
        for p in prefetch {
            let f = both(filter, p.filter.as_ref());
            lists.push(run(
                c,
                &p.prefetch,
                p.query.as_ref(),
                p.using.as_deref(),
                f.as_ref(),
                p.limit.unwrap_or(10) as usize,
            )?);
        }
        let k = match query.and_then(|q| q.variant.as_ref()) {
            Some(Variant::Rrf(r)) => r.k.unwrap_or(2),
            Some(Variant::Fusion(f)) if *f == q::Fusion::Rrf as i32 => 2,
            other => {
                return Err(Status::invalid_argument(format!(
                    "prefetches need a fusion query here (RRF), got {other:?}"
                )));
            }
        };
        let mut fused: BTreeMap<u64, f32> = BTreeMap::new();
        for list in lists {
            for (rank, (id, _)) in list.into_iter().enumerate() {
                *fused.entry(id).or_default() += 1.0 / (k as f32 + rank as f32);
            }
        }
        return Ok(sorted(fused.into_iter().collect(), limit));
    }
    let Some(Variant::Nearest(input)) = query.and_then(|q| q.variant.as_ref()) else {
        return Err(Status::invalid_argument("expected a nearest query"));
    };
    let name = using.unwrap_or("");
    let mut scored = Vec::new();
    match &input.variant {
        Some(q::vector_input::Variant::Dense(d)) => {
            let size = dense_size(c, name).ok_or_else(|| {
                Status::invalid_argument(format!("Not existing vector name error: {name}"))
            })?;
            if size != d.data.len() as u64 {
                return Err(Status::invalid_argument(format!(
                    "Vector dimension error: expected dim: {size}, got {}",
                    d.data.len()
                )));
            }
            for (id, p) in &c.points {
                if let Some(v) = p.dense.get(name)
                    && matches(filter, &p.payload)?
                {
                    scored.push((*id, cosine(v, &d.data)));
                }
            }
        }
        Some(q::vector_input::Variant::Sparse(s)) => {
            if !has_sparse(c, name) {
                return Err(Status::invalid_argument(format!(
                    "Not existing vector name error: {name}"
                )));
            }
            let query = sparse_map(&s.indices, &s.values)?;
            let with: Vec<&BTreeMap<u32, f32>> = c
                .points
                .values()
                .filter_map(|p| p.sparse.get(name))
                .collect();
            let n = with.len() as f32;
            let idf = |dim: u32| {
                let df = with.iter().filter(|m| m.contains_key(&dim)).count() as f32;
                (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
            };
            for (id, p) in &c.points {
                let Some(m) = p.sparse.get(name) else {
                    continue;
                };
                let mut score = 0.0;
                let mut any = false;
                for (dim, w) in &query {
                    if let Some(v) = m.get(dim) {
                        score += w * v * idf(*dim);
                        any = true;
                    }
                }
                if any && matches(filter, &p.payload)? {
                    scored.push((*id, score));
                }
            }
        }
        other => {
            return Err(Status::invalid_argument(format!(
                "expected a dense or sparse vector, got {other:?}"
            )));
        }
    }
    Ok(sorted(scored, limit))
}

fn id_of(id: Option<&q::PointId>) -> Result<u64, Status> {
    match id.and_then(|i| i.point_id_options.as_ref()) {
        Some(q::point_id::PointIdOptions::Num(n)) => Ok(*n),
        _ => Err(Status::invalid_argument("the fake takes numeric point ids")),
    }
}

macro_rules! service {
    ($trait:ident { $($done:tt)* } unimplemented { $($name:ident($req:ident) -> $resp:ident;)* }) => {
        #[tonic::async_trait]
        impl $trait for Service {
            $($done)*
            $(
                async fn $name(&self, _r: Request<q::$req>) -> Result<Response<q::$resp>, Status> {
                    Err(Status::unimplemented(concat!(
                        "the fake Qdrant does not implement ",
                        stringify!($name)
                    )))
                }
            )*
        }
    };
}

service! {
    Qdrant {
        async fn health_check(
            &self,
            r: Request<q::HealthCheckRequest>,
        ) -> Result<Response<q::HealthCheckReply>, Status> {
            drop(self.lock("qdrant/health_check", &r));
            Ok(Response::new(q::HealthCheckReply {
                title: "qdrant - vector search engine (fake)".into(),
                version: "1.16.0".into(),
                commit: None,
            }))
        }
    }
    unimplemented {}
}

service! {
    Collections {
        async fn collection_exists(
            &self,
            r: Request<q::CollectionExistsRequest>,
        ) -> Result<Response<q::CollectionExistsResponse>, Status> {
            let s = self.lock("collections/exists", &r);
            let exists = s.collections.contains_key(&r.get_ref().collection_name);
            Ok(Response::new(q::CollectionExistsResponse {
                result: Some(q::CollectionExists { exists }),
                time: 0.0,
            }))
        }

        async fn create(
            &self,
            r: Request<q::CreateCollection>,
        ) -> Result<Response<q::CollectionOperationResponse>, Status> {
            let mut s = self.lock("collections/create", &r);
            let create = r.into_inner();
            if s.collections.contains_key(&create.collection_name) {
                return Err(Status::already_exists(format!(
                    "Collection `{}` already exists!",
                    create.collection_name
                )));
            }
            s.collections.insert(
                create.collection_name.clone(),
                FakeCollection {
                    create,
                    ..FakeCollection::default()
                },
            );
            Ok(Response::new(q::CollectionOperationResponse {
                result: true,
                time: 0.0,
            }))
        }

        async fn get(
            &self,
            r: Request<q::GetCollectionInfoRequest>,
        ) -> Result<Response<q::GetCollectionInfoResponse>, Status> {
            let mut s = self.lock("collections/get", &r);
            let c = collection(&mut s, &r.get_ref().collection_name)?;
            Ok(Response::new(q::GetCollectionInfoResponse {
                result: Some(q::CollectionInfo {
                    points_count: Some(c.points.len() as u64),
                    config: Some(q::CollectionConfig {
                        params: Some(q::CollectionParams {
                            vectors_config: c.create.vectors_config.clone(),
                            sparse_vectors_config: c.create.sparse_vectors_config.clone(),
                            ..q::CollectionParams::default()
                        }),
                        ..q::CollectionConfig::default()
                    }),
                    ..q::CollectionInfo::default()
                }),
                time: 0.0,
            }))
        }

        async fn delete(
            &self,
            r: Request<q::DeleteCollection>,
        ) -> Result<Response<q::CollectionOperationResponse>, Status> {
            let mut s = self.lock("collections/delete", &r);
            let removed = s.collections.remove(&r.get_ref().collection_name).is_some();
            Ok(Response::new(q::CollectionOperationResponse {
                result: removed,
                time: 0.0,
            }))
        }
    }
    unimplemented {
            list(ListCollectionsRequest) -> ListCollectionsResponse;
            update(UpdateCollection) -> CollectionOperationResponse;
            update_aliases(ChangeAliases) -> CollectionOperationResponse;
            list_collection_aliases(ListCollectionAliasesRequest) -> ListAliasesResponse;
            list_aliases(ListAliasesRequest) -> ListAliasesResponse;
            collection_cluster_info(CollectionClusterInfoRequest) -> CollectionClusterInfoResponse;
            update_collection_cluster_setup(UpdateCollectionClusterSetupRequest) -> UpdateCollectionClusterSetupResponse;
            create_shard_key(CreateShardKeyRequest) -> CreateShardKeyResponse;
            delete_shard_key(DeleteShardKeyRequest) -> DeleteShardKeyResponse;
            list_shard_keys(ListShardKeysRequest) -> ListShardKeysResponse;
    }
}

service! {
    Points {
        async fn create_field_index(
            &self,
            r: Request<q::CreateFieldIndexCollection>,
        ) -> Result<Response<q::PointsOperationResponse>, Status> {
            let mut s = self.lock("points/create_field_index", &r);
            let req = r.into_inner();
            let c = collection(&mut s, &req.collection_name)?;
            let kind = req
                .field_type
                .ok_or_else(|| Status::invalid_argument("a payload index needs a field type"))?;
            c.indexes.insert(req.field_name, kind);
            Ok(ok_points())
        }

        async fn upsert(
            &self,
            r: Request<q::UpsertPoints>,
        ) -> Result<Response<q::PointsOperationResponse>, Status> {
            let mut s = self.lock("points/upsert", &r);
            let req = r.into_inner();
            let c = collection(&mut s, &req.collection_name)?;
            let mut staged = Vec::new();
            for p in req.points {
                let id = id_of(p.id.as_ref())?;
                let mut point = FakePoint {
                    payload: p.payload,
                    ..FakePoint::default()
                };
                let named = match p.vectors.and_then(|v| v.vectors_options) {
                    Some(q::vectors::VectorsOptions::Vectors(n)) => n.vectors,
                    _ => return Err(Status::invalid_argument("expected named vectors")),
                };
                for (name, v) in named {
                    match vector_of(v)? {
                        Input::Dense(d) => {
                            let size = dense_size(c, &name).ok_or_else(|| {
                                Status::invalid_argument(format!(
                                    "Wrong input: Not existing vector name error: {name}"
                                ))
                            })?;
                            if size != d.len() as u64 {
                                return Err(Status::invalid_argument(format!(
                                    "Wrong input: Vector dimension error: expected dim: {size}, got {}",
                                    d.len()
                                )));
                            }
                            point.dense.insert(name, d);
                        }
                        Input::Sparse(m) => {
                            if !has_sparse(c, &name) {
                                return Err(Status::invalid_argument(format!(
                                    "Wrong input: Not existing vector name error: {name}"
                                )));
                            }
                            point.sparse.insert(name, m);
                        }
                    }
                }
                staged.push((id, point));
            }
            c.points.extend(staged);
            Ok(ok_points())
        }

        async fn delete(
            &self,
            r: Request<q::DeletePoints>,
        ) -> Result<Response<q::PointsOperationResponse>, Status> {
            use q::points_selector::PointsSelectorOneOf;
            let mut s = self.lock("points/delete", &r);
            let req = r.into_inner();
            let selector = req.points.and_then(|p| p.points_selector_one_of);
            if let Some(PointsSelectorOneOf::Filter(f)) = &selector {
                s.filters.push(f.clone());
            }
            let c = collection(&mut s, &req.collection_name)?;
            match selector {
                Some(PointsSelectorOneOf::Filter(f)) => {
                    let mut keep = BTreeMap::new();
                    for (id, p) in std::mem::take(&mut c.points) {
                        if !matches(Some(&f), &p.payload)? {
                            keep.insert(id, p);
                        }
                    }
                    c.points = keep;
                }
                Some(PointsSelectorOneOf::Points(ids)) => {
                    for id in &ids.ids {
                        c.points.remove(&id_of(Some(id))?);
                    }
                }
                None => return Err(Status::invalid_argument("delete needs a selector")),
            }
            Ok(ok_points())
        }

        async fn scroll(
            &self,
            r: Request<q::ScrollPoints>,
        ) -> Result<Response<q::ScrollResponse>, Status> {
            let mut s = self.lock("points/scroll", &r);
            let req = r.into_inner();
            if let Some(f) = &req.filter {
                s.filters.push(f.clone());
            }
            let c = collection(&mut s, &req.collection_name)?;
            let from = match &req.offset {
                Some(o) => id_of(Some(o))?,
                None => 0,
            };
            let limit = req.limit.unwrap_or(10) as usize;
            let mut result = Vec::new();
            let mut next = None;
            for (id, p) in c.points.range(from..) {
                if !matches(req.filter.as_ref(), &p.payload)? {
                    continue;
                }
                if result.len() == limit {
                    next = Some(q::PointId::from(*id));
                    break;
                }
                result.push(q::RetrievedPoint {
                    id: Some(q::PointId::from(*id)),
                    payload: p.payload.clone(),
                    ..q::RetrievedPoint::default()
                });
            }
            Ok(Response::new(q::ScrollResponse {
                next_page_offset: next,
                result,
                time: 0.0,
                usage: None,
            }))
        }

        async fn count(
            &self,
            r: Request<q::CountPoints>,
        ) -> Result<Response<q::CountResponse>, Status> {
            let mut s = self.lock("points/count", &r);
            let req = r.into_inner();
            let c = collection(&mut s, &req.collection_name)?;
            let mut count = 0;
            for p in c.points.values() {
                if matches(req.filter.as_ref(), &p.payload)? {
                    count += 1;
                }
            }
            Ok(Response::new(q::CountResponse {
                result: Some(q::CountResult { count }),
                time: 0.0,
                usage: None,
            }))
        }

        async fn query(
            &self,
            r: Request<q::QueryPoints>,
        ) -> Result<Response<q::QueryResponse>, Status> {
            let mut s = self.lock("points/query", &r);
            let req = r.into_inner();
            s.queries.push(req.clone());
            if let Some(f) = &req.filter {
                s.filters.push(f.clone());
            }
            for p in &req.prefetch {
                if let Some(f) = &p.filter {
                    s.filters.push(f.clone());
                }
            }
            let c = collection(&mut s, &req.collection_name)?;
            let hits = run(
                c,
                &req.prefetch,
                req.query.as_ref(),
                req.using.as_deref(),
                req.filter.as_ref(),
                req.limit.unwrap_or(10) as usize,
            )?;
            let with_payload = matches!(
                req.with_payload.as_ref().and_then(|w| w.selector_options.as_ref()),
                Some(q::with_payload_selector::SelectorOptions::Enable(true))
            );
            let result = hits
                .into_iter()
                .map(|(id, score)| q::ScoredPoint {
                    id: Some(q::PointId::from(id)),
                    payload: if with_payload {
                        c.points.get(&id).map(|p| p.payload.clone()).unwrap_or_default()
                    } else {
                        HashMap::new()
                    },
                    score,
                    ..q::ScoredPoint::default()
                })
                .collect();
            Ok(Response::new(q::QueryResponse {
                result,
                time: 0.0,
                usage: None,
            }))
        }
    }
    unimplemented {
            get(GetPoints) -> GetResponse;
            update_vectors(UpdatePointVectors) -> PointsOperationResponse;
            delete_vectors(DeletePointVectors) -> PointsOperationResponse;
            set_payload(SetPayloadPoints) -> PointsOperationResponse;
            overwrite_payload(SetPayloadPoints) -> PointsOperationResponse;
            delete_payload(DeletePayloadPoints) -> PointsOperationResponse;
            clear_payload(ClearPayloadPoints) -> PointsOperationResponse;
            delete_field_index(DeleteFieldIndexCollection) -> PointsOperationResponse;
            create_vector_name(CreateVectorNameRequest) -> PointsOperationResponse;
            delete_vector_name(DeleteVectorNameRequest) -> PointsOperationResponse;
            search(SearchPoints) -> SearchResponse;
            search_batch(SearchBatchPoints) -> SearchBatchResponse;
            search_groups(SearchPointGroups) -> SearchGroupsResponse;
            recommend(RecommendPoints) -> RecommendResponse;
            recommend_batch(RecommendBatchPoints) -> RecommendBatchResponse;
            recommend_groups(RecommendPointGroups) -> RecommendGroupsResponse;
            discover(DiscoverPoints) -> DiscoverResponse;
            discover_batch(DiscoverBatchPoints) -> DiscoverBatchResponse;
            update_batch(UpdateBatchPoints) -> UpdateBatchResponse;
            query_batch(QueryBatchPoints) -> QueryBatchResponse;
            query_groups(QueryPointGroups) -> QueryGroupsResponse;
            facet(FacetCounts) -> FacetResponse;
            search_matrix_pairs(SearchMatrixPoints) -> SearchMatrixPairsResponse;
            search_matrix_offsets(SearchMatrixPoints) -> SearchMatrixOffsetsResponse;
    }
}

//! What every child collection of an HTTP API (routes, integrations,
//! authorizers, stages, deployments) does the same way: list a page of
//! them, get one, update one, delete one unless something refers to it.
//!
//! Each kind states only what is its own ([`Child`]); the handlers here are
//! generic and routed per kind (`get(children::list::<Route>)`), so a new
//! kind gets AWS's paging, not-found wording and atomic update for free.

use std::collections::BTreeMap;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{answer, load, mutate, not_found, page, PageQuery};
use crate::extract::{ApiRequest, ChildRequest};
use crate::http_api::model::HttpApi;
use crate::http_api::HttpApiService;
use crate::rest_api::error::RestResult;

/// One kind of child of an HTTP API, kept in a map by its id (a stage's id
/// is its name).
pub trait Child: Clone + Send + Sync + 'static {
    /// The word in AWS's "Invalid {KIND} identifier specified" answer.
    const KIND: &'static str;

    fn collection(api: &HttpApi) -> &BTreeMap<String, Self>;

    fn collection_mut(api: &mut HttpApi) -> &mut BTreeMap<String, Self>;

    /// The shape Get/Create/Update answer with.
    fn to_wire(&self) -> Value;

    /// Refuses a delete while another part of the API refers to the child
    /// `id` (a route to its integration, a stage to its deployment).
    fn check_unreferenced(_api: &HttpApi, _id: &str) -> RestResult<()> {
        Ok(())
    }

    /// Removes what belongs to the child `id` and goes with it (a route's
    /// or an integration's responses).
    fn remove_dependents(_api: &mut HttpApi, _id: &str) {}
}

/// `GET /v2/apis/{apiId}/{children}`: a page of them, in id order.
pub async fn list<C: Child>(
    on: ApiRequest<HttpApiService>,
    Query(query): Query<PageQuery>,
) -> RestResult<Response> {
    let api = load(&on.service, &on.caller, &on.api_id).await?;
    let items = C::collection(&api)
        .iter()
        .map(|(id, child)| (id.clone(), child.to_wire()))
        .collect();
    Ok(answer(StatusCode::OK, page(items, &query)?))
}

/// `GET /v2/apis/{apiId}/{children}/{id}`.
pub async fn get<C: Child>(on: ChildRequest<HttpApiService>) -> RestResult<Response> {
    let api = load(&on.service, &on.caller, &on.api_id).await?;
    let child = C::collection(&api)
        .get(&on.id)
        .ok_or_else(|| not_found(C::KIND, &on.caller, &on.id))?;
    Ok(answer(StatusCode::OK, child.to_wire()))
}

/// `DELETE /v2/apis/{apiId}/{children}/{id}`: 204, or the kind's refusal
/// while the child is referred to.
pub async fn delete<C: Child>(on: ChildRequest<HttpApiService>) -> RestResult<Response> {
    let missing = not_found(C::KIND, &on.caller, &on.id);
    let id = on.id;
    mutate(&on.service, &on.caller, &on.api_id, move |api| {
        if !C::collection(api).contains_key(&id) {
            return Err(missing);
        }
        C::check_unreferenced(api, &id)?;
        C::collection_mut(api).remove(&id);
        C::remove_dependents(api, &id);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The body of every `PATCH /v2/apis/{apiId}/{children}/{id}`: `change`
/// gets the API and the child as it is and returns it as it shall be, all
/// in one atomic update; the answer is 200 with the child's new shape.
pub async fn update<C, F>(on: ChildRequest<HttpApiService>, change: F) -> RestResult<Response>
where
    C: Child,
    F: FnOnce(&mut HttpApi, C) -> RestResult<C> + Send + 'static,
{
    let missing = not_found(C::KIND, &on.caller, &on.id);
    let id = on.id;
    let (_, child) = mutate(&on.service, &on.caller, &on.api_id, move |api| {
        let current = C::collection(api).get(&id).cloned().ok_or(missing)?;
        let updated = change(api, current)?;
        C::collection_mut(api).insert(id, updated.clone());
        Ok(updated)
    })
    .await?;
    Ok(answer(StatusCode::OK, child.to_wire()))
}

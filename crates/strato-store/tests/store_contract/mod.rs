//! The contract every [`Store`] backend must meet, written once against the
//! trait so that each backend runs the same checks: `tests/contract.rs`
//! runs them on [`strato_store::SqliteStore`]; another backend adds a test
//! file with `#[macro_use] #[path = "…/store_contract/mod.rs"] mod
//! store_contract;` and `store_contract_tests!(its_fresh_store())`, where
//! the expression yields `(Arc<dyn Store>, guard)` for an empty store that
//! lives as long as the guard.
//!
//! What each check pins, beyond the trait's signatures:
//!
//! - [`accounts_round_trip`] — an account reads back as created; creating an
//!   existing id is `AlreadyExists` and leaves the first one; an unknown id
//!   is `None`; the listing holds every account.
//! - [`account_concurrency_limit_is_updated_in_place`] — the limit is stored
//!   on the account (and nothing else of it changes); an unknown account
//!   answers `false` and is not created.
//! - [`deleting_an_account_deletes_what_it_owns`] — `delete_account` is true
//!   once, then false; the account's keys, functions (and their usage) and
//!   documents go with it, another account's stay.
//! - [`access_keys_are_put_and_listed`] — keys of several accounts are
//!   listed; putting an existing key id replaces it (one entry, new secret).
//! - [`functions_round_trip`] — a function reads back as inserted; a second
//!   insert of the same account, region and name is `AlreadyExists`; the
//!   same name in another region or account is another function.
//! - [`functions_list_in_name_order_and_page_after_a_marker`] — listing is
//!   by name in byte order (`str` order: upper case before lower case, `-`
//!   before digits before `_`; a backend must not sort by a locale
//!   collation), starts strictly after the marker, holds at most `limit`,
//!   and paging by the last name seen visits every function once; other
//!   accounts and regions are never listed.
//! - [`update_function_applies_the_mutation_to_the_stored_record`] — the
//!   mutation sees the stored record, what it made is returned and stored;
//!   a refusing mutation is `Rejected` with its error and stores nothing; an
//!   unknown function is `NotFound`.
//! - [`update_function_loses_no_concurrent_update`] — N concurrent mutations
//!   that each increment a counter of the record all land (the final value
//!   is N), and each ran on a different committed value (the returned
//!   values are exactly 1..=N): the read-modify-write is atomic.
//! - [`delete_function_returns_what_it_deleted`] — the deleted record once,
//!   then `None`; the function is gone from reads and listings.
//! - [`list_all_functions_spans_accounts_and_regions`] — every function of
//!   every account and region, each once.
//! - [`function_usage_counts_functions_and_code_bytes`] — per account and
//!   region, the number of functions and the sum of
//!   [`FunctionRecord::code_size`] (`$LATEST` plus published versions),
//!   following inserts, updates that change the code, and deletes.
//! - [`documents_round_trip`] — insert then get; a second insert of a key is
//!   `AlreadyExists` and keeps the first document; `put` creates and
//!   replaces; a key differing in account, region, kind or id is another
//!   document; `delete_document` is true once, then false.
//! - [`documents_list_by_prefix_in_id_order_and_page_after_a_marker`]:
//!   one kind in one account and region, ids starting with the prefix
//!   taken literally (`%` and `_` are not wildcards), in byte order,
//!   strictly after the marker, at most `limit`; `list_all_documents`
//!   returns one kind across accounts and regions.
//! - [`update_document_applies_the_mutation_to_the_stored_document`] — the
//!   mutation sees the document or `None`; returning a document stores it
//!   (creating it if absent), returning `None` deletes it; the caller gets
//!   the mutation's answer (`MutationOutcome::Applied`); a refusing
//!   mutation is `MutationOutcome::Refused` with its answer and stores
//!   nothing.
//! - [`update_typed_answers_in_the_callers_types`] — `StoreExt::update_typed`
//!   on any `dyn Store`: the caller's document, answer and error types.
//! - [`update_document_loses_no_concurrent_update`] — as for functions.
//! - [`settings_are_put_and_replaced`] — an unset key is `None`; `put`
//!   creates and replaces; keys are independent.

// A panic in a test (or its helpers) is a failed test, not a crashed server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use strato_model::function::CodeRef;
use strato_model::{
    AccessKey, Account, AwsError, FunctionConfig, FunctionRecord, FunctionState, LastUpdateStatus,
    Runtime, LATEST,
};
use strato_store::{Document, DocumentKey, MutationOutcome, Store, StoreError, StoreExt};

/// How many writers the concurrency checks run at once.
const CONCURRENT_WRITERS: u64 = 32;

const REGION: &str = "us-east-1";
const OTHER_REGION: &str = "eu-west-1";
const ACCOUNT: &str = "000000000001";
const OTHER_ACCOUNT: &str = "000000000002";
const KIND: &str = "layer-version";

/// Generates one `#[tokio::test]` per contract check; `$fresh` is evaluated
/// (and awaited) once per test and yields `(Arc<dyn Store>, guard)`. The
/// list is the whole contract: a check missing from it is dead code, which
/// the build refuses.
macro_rules! store_contract_tests {
    ($fresh:expr) => {
        store_contract_tests!(
            @each $fresh;
            accounts_round_trip,
            account_concurrency_limit_is_updated_in_place,
            deleting_an_account_deletes_what_it_owns,
            access_keys_are_put_and_listed,
            functions_round_trip,
            functions_list_in_name_order_and_page_after_a_marker,
            update_function_applies_the_mutation_to_the_stored_record,
            update_function_loses_no_concurrent_update,
            delete_function_returns_what_it_deleted,
            list_all_functions_spans_accounts_and_regions,
            function_usage_counts_functions_and_code_bytes,
            documents_round_trip,
            documents_list_by_prefix_in_id_order_and_page_after_a_marker,
            update_document_applies_the_mutation_to_the_stored_document,
            update_document_loses_no_concurrent_update,
            update_typed_answers_in_the_callers_types,
            settings_are_put_and_replaced,
        );
    };
    (@each $fresh:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let (store, _guard) = $fresh.await;
                store_contract::$check(store).await;
            }
        )+
    };
}

// ------------------------------------------------------------------ records

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0)
        .single()
        .expect("a valid timestamp")
}

fn account(id: &str, name: &str) -> Account {
    Account {
        id: id.into(),
        name: name.into(),
        concurrency_limit: 1000,
        created_at: at(0),
    }
}

fn access_key(id: &str, secret: &str, account: &str) -> AccessKey {
    AccessKey {
        access_key_id: id.into(),
        secret_access_key: secret.into(),
        account_id: account.into(),
    }
}

fn code(size: u64) -> CodeRef {
    CodeRef {
        sha256_base64: format!("sha-of-{size}"),
        sha256_hex: format!("{size:064x}"),
        size,
        unzipped_size: size * 2,
    }
}

/// A settled function whose `$LATEST` code is `code_size` bytes.
fn function(account: &str, region: &str, name: &str, code_size: u64) -> FunctionRecord {
    FunctionRecord {
        account: account.into(),
        region: region.into(),
        latest: FunctionConfig {
            name: name.into(),
            version: LATEST.into(),
            runtime: Runtime::Python312,
            role: format!("arn:aws:iam::{account}:role/lambda-role"),
            handler: Some("app.handler".into()),
            description: String::new(),
            timeout: 3,
            memory_size: 128,
            ephemeral_storage: 512,
            environment: None,
            architectures: vec!["x86_64".into()],
            code: code(code_size),
            revision_id: format!("revision-of-{name}"),
            last_modified: at(1),
            state: FunctionState::Active,
            state_reason: None,
            state_reason_code: None,
            last_update_status: Some(LastUpdateStatus::Successful),
            last_update_status_reason: None,
            last_update_status_reason_code: None,
            tracing_mode: "PassThrough".into(),
            dead_letter_target_arn: None,
            kms_key_arn: None,
            log_format: "Text".into(),
            log_group: format!("/aws/lambda/{name}"),
            layers: Vec::new(),
            runtime_version: None,
            runtime_update: Default::default(),
        },
        tags: BTreeMap::new(),
        policy: Default::default(),
        reserved_concurrency: None,
        created_at: at(1),
        versions: BTreeMap::new(),
        last_version: 0,
        published_latest_modified: None,
        aliases: BTreeMap::new(),
        qualified_policies: BTreeMap::new(),
        provisioned_concurrency: BTreeMap::new(),
        event_invoke_configs: BTreeMap::new(),
        code_signing_config_arn: None,
        recursive_loop: Default::default(),
    }
}

fn doc_key(account: &str, region: &str, kind: &str, id: &str) -> DocumentKey {
    DocumentKey::new(account, region, kind, id)
}

async fn with_accounts(store: &dyn Store, ids: &[&str]) {
    for id in ids {
        store
            .create_account(&account(id, "owner"))
            .await
            .expect("create account");
    }
}

/// Inserts [`function`]`(account, region, name, code_size)`.
async fn insert(store: &dyn Store, account: &str, region: &str, name: &str, code_size: u64) {
    let record = function(account, region, name, code_size);
    store
        .insert_function(&record)
        .await
        .expect("insert function");
}

/// The stored function, if any.
async fn stored(
    store: &dyn Store,
    account: &str,
    region: &str,
    name: &str,
) -> Option<FunctionRecord> {
    store
        .get_function(account, region, name)
        .await
        .expect("get function")
}

/// The names `list_functions` answers, in its order.
async fn listed(
    store: &dyn Store,
    account: &str,
    region: &str,
    marker: Option<&str>,
    limit: usize,
) -> Vec<String> {
    let page = store.list_functions(account, region, marker, limit).await;
    names(&page.expect("list functions"))
}

fn names(records: &[FunctionRecord]) -> Vec<String> {
    records.iter().map(|r| r.name().to_string()).collect()
}

fn ids(documents: &[Document]) -> Vec<String> {
    documents.iter().map(|d| d.key.id.clone()).collect()
}

/// A refusal as a mutation would make it, recognisable by its message.
fn refusal() -> AwsError {
    AwsError::conflict("the contract's mutation refuses")
}

fn assert_refused<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Rejected(err)) => assert_eq!(err.message, refusal().message),
        other => panic!("expected Rejected with the mutation's error, got {other:?}"),
    }
}

// ----------------------------------------------------------------- accounts

pub async fn accounts_round_trip(store: Arc<dyn Store>) {
    let first = account(ACCOUNT, "first");
    store.create_account(&first).await.expect("create");
    assert_eq!(
        store.get_account(ACCOUNT).await.expect("get"),
        Some(first.clone())
    );
    assert!(matches!(
        store.create_account(&account(ACCOUNT, "impostor")).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.get_account(ACCOUNT).await.expect("get"),
        Some(first.clone()),
        "a refused create leaves the account as it was"
    );
    assert_eq!(store.get_account("999999999999").await.expect("get"), None);

    let second = account(OTHER_ACCOUNT, "second");
    store.create_account(&second).await.expect("create");
    let mut listed = store.list_accounts().await.expect("list");
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(listed, vec![first, second]);
}

pub async fn account_concurrency_limit_is_updated_in_place(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT]).await;
    assert!(store
        .set_account_concurrency_limit(ACCOUNT, 37)
        .await
        .expect("set limit"));
    let mut expected = account(ACCOUNT, "owner");
    expected.concurrency_limit = 37;
    assert_eq!(
        store.get_account(ACCOUNT).await.expect("get"),
        Some(expected)
    );

    assert!(!store
        .set_account_concurrency_limit("999999999999", 5)
        .await
        .expect("set limit of nobody"));
    assert_eq!(store.get_account("999999999999").await.expect("get"), None);
}

pub async fn deleting_an_account_deletes_what_it_owns(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT, OTHER_ACCOUNT]).await;
    for owner in [ACCOUNT, OTHER_ACCOUNT] {
        store
            .put_access_key(&access_key(&format!("AKIA{owner}"), "secret", owner))
            .await
            .expect("put key");
        insert(store.as_ref(), owner, REGION, "fn", 10).await;
        store
            .insert_document(
                &doc_key(owner, REGION, KIND, "doc"),
                &json!({"owner": owner}),
            )
            .await
            .expect("insert document");
    }

    assert!(store.delete_account(ACCOUNT).await.expect("delete"));
    assert!(!store.delete_account(ACCOUNT).await.expect("delete again"));

    assert_eq!(store.get_account(ACCOUNT).await.expect("get"), None);
    let keys = store.list_access_keys().await.expect("list keys");
    assert_eq!(
        keys,
        vec![access_key(
            &format!("AKIA{OTHER_ACCOUNT}"),
            "secret",
            OTHER_ACCOUNT
        )]
    );
    assert_eq!(stored(store.as_ref(), ACCOUNT, REGION, "fn").await, None);
    assert_eq!(
        store.function_usage(ACCOUNT, REGION).await.expect("usage"),
        (0, 0)
    );
    assert_eq!(
        names(&store.list_all_functions().await.expect("list all")),
        ["fn"]
    );
    assert_eq!(
        store
            .get_document(&doc_key(ACCOUNT, REGION, KIND, "doc"))
            .await
            .expect("get"),
        None
    );
    let left = store.list_all_documents(KIND).await.expect("list all");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].key.account, OTHER_ACCOUNT);
}

// ------------------------------------------------------------- access keys

pub async fn access_keys_are_put_and_listed(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT, OTHER_ACCOUNT]).await;
    let first = access_key("AKIAFIRST", "first-secret", ACCOUNT);
    let second = access_key("AKIASECOND", "second-secret", ACCOUNT);
    let other = access_key("AKIAOTHER", "other-secret", OTHER_ACCOUNT);
    for key in [&first, &second, &other] {
        store.put_access_key(key).await.expect("put key");
    }
    let sorted = |mut keys: Vec<AccessKey>| {
        keys.sort_by(|a, b| a.access_key_id.cmp(&b.access_key_id));
        keys
    };
    assert_eq!(
        sorted(store.list_access_keys().await.expect("list")),
        sorted(vec![first.clone(), second.clone(), other.clone()])
    );

    let rotated = access_key("AKIASECOND", "rotated-secret", ACCOUNT);
    store.put_access_key(&rotated).await.expect("put again");
    assert_eq!(
        sorted(store.list_access_keys().await.expect("list")),
        sorted(vec![first, rotated, other])
    );
}

// --------------------------------------------------------------- functions

pub async fn functions_round_trip(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT, OTHER_ACCOUNT]).await;
    let record = function(ACCOUNT, REGION, "round-trip", 100);
    store.insert_function(&record).await.expect("insert");
    assert_eq!(
        stored(store.as_ref(), ACCOUNT, REGION, "round-trip").await,
        Some(record.clone())
    );

    let mut twin = function(ACCOUNT, REGION, "round-trip", 999);
    twin.latest.description = "a second insert".into();
    assert!(matches!(
        store.insert_function(&twin).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        stored(store.as_ref(), ACCOUNT, REGION, "round-trip").await,
        Some(record),
        "a refused insert leaves the function as it was"
    );

    for (account, region) in [(ACCOUNT, OTHER_REGION), (OTHER_ACCOUNT, REGION)] {
        assert_eq!(
            stored(store.as_ref(), account, region, "round-trip").await,
            None
        );
        let namesake = function(account, region, "round-trip", 7);
        store
            .insert_function(&namesake)
            .await
            .expect("the same name elsewhere is another function");
        assert_eq!(
            stored(store.as_ref(), account, region, "round-trip").await,
            Some(namesake)
        );
    }
    assert_eq!(
        stored(store.as_ref(), ACCOUNT, REGION, "missing").await,
        None
    );
}

pub async fn functions_list_in_name_order_and_page_after_a_marker(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT, OTHER_ACCOUNT]).await;
    let inserted = ["fn_a", "fn-b", "Fn-c", "fn1", "fn-a-1", "fn-a", "FN"];
    for name in inserted {
        insert(store.as_ref(), ACCOUNT, REGION, name, 1).await;
    }
    insert(store.as_ref(), ACCOUNT, OTHER_REGION, "elsewhere", 1).await;
    insert(store.as_ref(), OTHER_ACCOUNT, REGION, "theirs", 1).await;

    let mut in_order: Vec<String> = inserted.iter().map(|n| n.to_string()).collect();
    in_order.sort();
    assert_eq!(
        in_order,
        ["FN", "Fn-c", "fn-a", "fn-a-1", "fn-b", "fn1", "fn_a"],
        "byte order"
    );

    assert_eq!(
        listed(store.as_ref(), ACCOUNT, REGION, None, usize::MAX).await,
        in_order
    );

    let after = store
        .list_functions(ACCOUNT, REGION, Some("fn-a"), 2)
        .await
        .expect("list after a marker");
    assert_eq!(names(&after), ["fn-a-1", "fn-b"]);
    let after_absent_name = store
        .list_functions(ACCOUNT, REGION, Some("fn-a-0"), 1)
        .await
        .expect("list after a name that does not exist");
    assert_eq!(names(&after_absent_name), ["fn-a-1"]);
    let past_the_end = store
        .list_functions(ACCOUNT, REGION, Some("fn_a"), 10)
        .await
        .expect("list past the end");
    assert!(past_the_end.is_empty(), "{:?}", names(&past_the_end));

    let mut paged = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = store
            .list_functions(ACCOUNT, REGION, marker.as_deref(), 3)
            .await
            .expect("list a page");
        assert!(page.len() <= 3, "{:?}", names(&page));
        let Some(last) = page.last() else { break };
        marker = Some(last.name().to_string());
        paged.extend(names(&page));
    }
    assert_eq!(paged, in_order, "paging visits every function once");

    assert_eq!(
        listed(store.as_ref(), OTHER_ACCOUNT, REGION, None, 10).await,
        ["theirs"]
    );
    assert_eq!(
        listed(store.as_ref(), ACCOUNT, OTHER_REGION, None, 10).await,
        ["elsewhere"]
    );
}

pub async fn update_function_applies_the_mutation_to_the_stored_record(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT]).await;
    let original = function(ACCOUNT, REGION, "mutable", 10);
    store.insert_function(&original).await.expect("insert");

    let seen = original.clone();
    let updated = store
        .update_function(
            ACCOUNT,
            REGION,
            "mutable",
            Box::new(move |record| {
                assert_eq!(*record, seen, "the mutation sees the stored record");
                record.latest.description = "changed".into();
                record.reserved_concurrency = Some(3);
                Ok(())
            }),
        )
        .await
        .expect("update");
    let mut expected = original;
    expected.latest.description = "changed".into();
    expected.reserved_concurrency = Some(3);
    assert_eq!(updated, expected, "the update returns what it stored");
    assert_eq!(
        stored(store.as_ref(), ACCOUNT, REGION, "mutable").await,
        Some(expected.clone())
    );

    assert_refused(
        store
            .update_function(
                ACCOUNT,
                REGION,
                "mutable",
                Box::new(|record| {
                    record.latest.description = "never stored".into();
                    Err(refusal())
                }),
            )
            .await,
    );
    assert_eq!(
        stored(store.as_ref(), ACCOUNT, REGION, "mutable").await,
        Some(expected),
        "a refused mutation stores nothing"
    );

    assert!(matches!(
        store
            .update_function(ACCOUNT, REGION, "missing", Box::new(|_| Ok(())))
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn update_function_loses_no_concurrent_update(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT]).await;
    insert(store.as_ref(), ACCOUNT, REGION, "counted", 1).await;
    // `last_version` serves as the counter: any field the mutation reads
    // and writes back would do.
    let writers: Vec<_> = (0..CONCURRENT_WRITERS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .update_function(
                        ACCOUNT,
                        REGION,
                        "counted",
                        Box::new(|record| {
                            record.last_version += 1;
                            Ok(())
                        }),
                    )
                    .await
                    .expect("update")
                    .last_version
            })
        })
        .collect();
    each_saw_the_previous_commit(writers).await;
    let stored = stored(store.as_ref(), ACCOUNT, REGION, "counted")
        .await
        .expect("still there");
    assert_eq!(
        stored.last_version, CONCURRENT_WRITERS,
        "no update was lost"
    );
}

pub async fn delete_function_returns_what_it_deleted(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT]).await;
    let doomed = function(ACCOUNT, REGION, "doomed", 5);
    let kept = function(ACCOUNT, REGION, "kept", 5);
    for record in [&doomed, &kept] {
        store.insert_function(record).await.expect("insert");
    }
    assert_eq!(
        store
            .delete_function(ACCOUNT, REGION, "doomed")
            .await
            .expect("delete"),
        Some(doomed)
    );
    assert_eq!(
        store
            .delete_function(ACCOUNT, REGION, "doomed")
            .await
            .expect("delete again"),
        None
    );
    assert_eq!(
        stored(store.as_ref(), ACCOUNT, REGION, "doomed").await,
        None
    );
    assert_eq!(
        listed(store.as_ref(), ACCOUNT, REGION, None, 10).await,
        ["kept"]
    );
    assert_eq!(
        stored(store.as_ref(), ACCOUNT, REGION, "kept").await,
        Some(kept)
    );
}

pub async fn list_all_functions_spans_accounts_and_regions(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT, OTHER_ACCOUNT]).await;
    let placed = [
        (ACCOUNT, REGION, "a"),
        (ACCOUNT, REGION, "b"),
        (ACCOUNT, OTHER_REGION, "a"),
        (OTHER_ACCOUNT, REGION, "a"),
    ];
    for (account, region, name) in placed {
        insert(store.as_ref(), account, region, name, 1).await;
    }
    let mut listed: Vec<(String, String, String)> = store
        .list_all_functions()
        .await
        .expect("list all")
        .iter()
        .map(|r| (r.account.clone(), r.region.clone(), r.name().to_string()))
        .collect();
    listed.sort();
    let mut expected: Vec<(String, String, String)> = placed
        .iter()
        .map(|(a, r, n)| (a.to_string(), r.to_string(), n.to_string()))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
}

pub async fn function_usage_counts_functions_and_code_bytes(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT, OTHER_ACCOUNT]).await;
    assert_eq!(
        store.function_usage(ACCOUNT, REGION).await.expect("usage"),
        (0, 0)
    );
    insert(store.as_ref(), ACCOUNT, REGION, "small", 100).await;
    insert(store.as_ref(), ACCOUNT, REGION, "large", 5_000_000_000).await;
    insert(store.as_ref(), ACCOUNT, OTHER_REGION, "elsewhere", 7).await;
    insert(store.as_ref(), OTHER_ACCOUNT, REGION, "theirs", 9).await;
    assert_eq!(
        store.function_usage(ACCOUNT, REGION).await.expect("usage"),
        (2, 5_000_000_100),
        "sizes above 32 bits add up"
    );

    // New code for `$LATEST` and a published version: both count.
    let updated = store
        .update_function(
            ACCOUNT,
            REGION,
            "small",
            Box::new(|record| {
                let mut published = record.latest.clone();
                published.version = "1".into();
                record.versions.insert(1, published);
                record.last_version = 1;
                record.latest.code = code(250);
                Ok(())
            }),
        )
        .await
        .expect("update code");
    assert_eq!(updated.code_size(), 350);
    assert_eq!(
        store.function_usage(ACCOUNT, REGION).await.expect("usage"),
        (2, 5_000_000_350)
    );

    store
        .delete_function(ACCOUNT, REGION, "large")
        .await
        .expect("delete");
    assert_eq!(
        store.function_usage(ACCOUNT, REGION).await.expect("usage"),
        (1, 350)
    );
    assert_eq!(
        store
            .function_usage(ACCOUNT, OTHER_REGION)
            .await
            .expect("usage"),
        (1, 7)
    );
    assert_eq!(
        store
            .function_usage(OTHER_ACCOUNT, REGION)
            .await
            .expect("usage"),
        (1, 9)
    );
}

// --------------------------------------------------------------- documents

pub async fn documents_round_trip(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT, OTHER_ACCOUNT]).await;
    let key = doc_key(ACCOUNT, REGION, KIND, "layer#1");
    store
        .insert_document(&key, &json!({"v": 1}))
        .await
        .expect("insert");
    assert_eq!(
        store.get_document(&key).await.expect("get"),
        Some(json!({"v": 1}))
    );
    assert!(matches!(
        store.insert_document(&key, &json!({"v": 2})).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.get_document(&key).await.expect("get"),
        Some(json!({"v": 1})),
        "a refused insert keeps the first document"
    );

    store
        .put_document(&key, &json!({"v": 3, "nested": {"list": [1, "two", null]}}))
        .await
        .expect("put replaces");
    assert_eq!(
        store.get_document(&key).await.expect("get"),
        Some(json!({"v": 3, "nested": {"list": [1, "two", null]}}))
    );
    let created_by_put = doc_key(ACCOUNT, REGION, KIND, "layer#2");
    store
        .put_document(&created_by_put, &json!("a string document"))
        .await
        .expect("put creates");
    assert_eq!(
        store.get_document(&created_by_put).await.expect("get"),
        Some(json!("a string document"))
    );

    for other in [
        doc_key(OTHER_ACCOUNT, REGION, KIND, "layer#1"),
        doc_key(ACCOUNT, OTHER_REGION, KIND, "layer#1"),
        doc_key(ACCOUNT, REGION, "function-url", "layer#1"),
        doc_key(ACCOUNT, REGION, KIND, "LAYER#1"),
    ] {
        assert_eq!(store.get_document(&other).await.expect("get"), None);
        store
            .insert_document(&other, &json!({"key": format!("{other:?}")}))
            .await
            .expect("another key is another document");
    }
    assert_eq!(
        store.get_document(&key).await.expect("get"),
        Some(json!({"v": 3, "nested": {"list": [1, "two", null]}})),
        "documents under other keys leave this one alone"
    );

    assert!(store.delete_document(&key).await.expect("delete"));
    assert!(!store.delete_document(&key).await.expect("delete again"));
    assert_eq!(store.get_document(&key).await.expect("get"), None);
    assert!(store
        .get_document(&doc_key(OTHER_ACCOUNT, REGION, KIND, "layer#1"))
        .await
        .expect("get")
        .is_some());
}

pub async fn documents_list_by_prefix_in_id_order_and_page_after_a_marker(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT, OTHER_ACCOUNT]).await;
    let listed_ids = ["b#2", "a#1", "b#1", "b_#1", "b%#1", "B#1", "b#10", "bx#1"];
    for id in listed_ids {
        store
            .insert_document(&doc_key(ACCOUNT, REGION, KIND, id), &json!({"id": id}))
            .await
            .expect("insert");
    }
    for key in [
        doc_key(ACCOUNT, REGION, "other-kind", "b#3"),
        doc_key(ACCOUNT, OTHER_REGION, KIND, "b#4"),
        doc_key(OTHER_ACCOUNT, REGION, KIND, "b#5"),
    ] {
        store
            .insert_document(&key, &json!({"id": key.id}))
            .await
            .expect("insert elsewhere");
    }
    let list = |prefix: &'static str, after: Option<&'static str>, limit: usize| {
        let store = store.clone();
        async move {
            store
                .list_documents(ACCOUNT, REGION, KIND, prefix, after, limit)
                .await
                .expect("list documents")
        }
    };

    let everything = list("", None, usize::MAX).await;
    let mut in_order: Vec<String> = listed_ids.iter().map(|i| i.to_string()).collect();
    in_order.sort();
    assert_eq!(ids(&everything), in_order, "byte order");
    for document in &everything {
        assert_eq!(
            document.key,
            doc_key(ACCOUNT, REGION, KIND, &document.key.id)
        );
        assert_eq!(document.doc, json!({"id": document.key.id}));
    }

    assert_eq!(ids(&list("b#", None, 10).await), ["b#1", "b#10", "b#2"]);
    assert_eq!(
        ids(&list("b_", None, 10).await),
        ["b_#1"],
        "`_` is not a wildcard"
    );
    assert_eq!(
        ids(&list("b%", None, 10).await),
        ["b%#1"],
        "`%` is not a wildcard"
    );
    assert_eq!(ids(&list("b#", Some("b#1"), 10).await), ["b#10", "b#2"]);
    assert_eq!(ids(&list("b#", Some("b#1"), 1).await), ["b#10"]);
    assert_eq!(ids(&list("", Some("b#"), 2).await), ["b#1", "b#10"]);
    assert!(list("c", None, 10).await.is_empty());

    let mut paged = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = store
            .list_documents(ACCOUNT, REGION, KIND, "", marker.as_deref(), 3)
            .await
            .expect("list a page");
        assert!(page.len() <= 3, "{:?}", ids(&page));
        let Some(last) = page.last() else { break };
        marker = Some(last.key.id.clone());
        paged.extend(ids(&page));
    }
    assert_eq!(paged, in_order, "paging visits every document once");

    let mut all_of_kind: Vec<(String, String, String)> = store
        .list_all_documents(KIND)
        .await
        .expect("list all")
        .into_iter()
        .map(|d| {
            assert_eq!(d.key.kind, KIND);
            (d.key.account, d.key.region, d.key.id)
        })
        .collect();
    all_of_kind.sort();
    let mut expected: Vec<(String, String, String)> = listed_ids
        .iter()
        .map(|id| (ACCOUNT.to_string(), REGION.to_string(), id.to_string()))
        .chain([
            (ACCOUNT.to_string(), OTHER_REGION.to_string(), "b#4".into()),
            (OTHER_ACCOUNT.to_string(), REGION.to_string(), "b#5".into()),
        ])
        .collect();
    expected.sort();
    assert_eq!(all_of_kind, expected);
}

/// The answer a mutation gave, when it was applied.
fn applied<T: 'static>(outcome: MutationOutcome) -> T {
    match outcome {
        MutationOutcome::Applied(answer) => *answer.downcast::<T>().expect("the mutation's answer"),
        MutationOutcome::Refused(_) => panic!("expected the mutation to be applied"),
    }
}

pub async fn update_document_applies_the_mutation_to_the_stored_document(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT]).await;
    let key = doc_key(ACCOUNT, REGION, KIND, "mutable");

    let created = store
        .update_document(
            &key,
            Box::new(|current| {
                assert_eq!(current, None, "an absent document is None");
                Ok((Some(json!({"n": 1})), Box::new("created")))
            }),
        )
        .await
        .expect("create through update");
    assert_eq!(
        applied::<&str>(created),
        "created",
        "the caller gets the mutation's answer"
    );
    assert_eq!(
        store.get_document(&key).await.expect("get"),
        Some(json!({"n": 1}))
    );

    let changed = store
        .update_document(
            &key,
            Box::new(|current| {
                assert_eq!(current, Some(json!({"n": 1})), "the stored document");
                Ok((Some(json!({"n": 2})), Box::new(2u64)))
            }),
        )
        .await
        .expect("change");
    assert_eq!(applied::<u64>(changed), 2);

    let refused = store
        .update_document(&key, Box::new(|_| Err(Box::new(refusal()))))
        .await
        .expect("a refusal is not a store error");
    match refused {
        MutationOutcome::Refused(answer) => assert_eq!(
            answer.downcast::<AwsError>().expect("the refusal").message,
            refusal().message
        ),
        MutationOutcome::Applied(_) => panic!("expected the refusal"),
    }
    assert_eq!(
        store.get_document(&key).await.expect("get"),
        Some(json!({"n": 2})),
        "a refused mutation stores nothing"
    );

    let deleted = store
        .update_document(&key, Box::new(|_| Ok((None, Box::new(())))))
        .await
        .expect("delete through update");
    applied::<()>(deleted);
    assert_eq!(store.get_document(&key).await.expect("get"), None);
    assert!(
        !store.delete_document(&key).await.expect("delete"),
        "nothing left to delete"
    );

    let never = doc_key(ACCOUNT, REGION, KIND, "never");
    let left_absent = store
        .update_document(&never, Box::new(|_| Ok((None, Box::new(())))))
        .await
        .expect("leave absent");
    applied::<()>(left_absent);
    assert_eq!(store.get_document(&never).await.expect("get"), None);
}

/// `StoreExt::update_typed` over the same contract: the caller's own types
/// for the document, the answer and the error.
pub async fn update_typed_answers_in_the_callers_types(store: Arc<dyn Store>) {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Counter {
        n: u64,
    }
    with_accounts(store.as_ref(), &[ACCOUNT]).await;
    let key = doc_key(ACCOUNT, REGION, KIND, "typed");
    let first: Result<u64, StoreError> = store
        .update_typed(&key, |current: Option<Counter>| {
            assert_eq!(current, None);
            Ok((Some(Counter { n: 1 }), 1))
        })
        .await;
    assert_eq!(first.expect("create"), 1);
    let refused: Result<u64, StoreError> = store
        .update_typed(&key, |current: Option<Counter>| {
            assert_eq!(current, Some(Counter { n: 1 }));
            Err(StoreError::Rejected(refusal()))
        })
        .await;
    assert_refused(refused);
    assert_eq!(
        store.get_document(&key).await.expect("get"),
        Some(json!({"n": 1})),
        "a refused typed mutation stores nothing"
    );
}

/// Awaits concurrent counting writers and checks that each mutation ran on
/// the value the previous one committed: together they returned 1, 2, … up
/// to [`CONCURRENT_WRITERS`].
async fn each_saw_the_previous_commit(writers: Vec<tokio::task::JoinHandle<u64>>) {
    let mut returned = Vec::new();
    for writer in writers {
        returned.push(writer.await.expect("writer task"));
    }
    returned.sort_unstable();
    assert_eq!(
        returned,
        (1..=CONCURRENT_WRITERS).collect::<Vec<_>>(),
        "each mutation ran on the value the previous one committed"
    );
}

pub async fn update_document_loses_no_concurrent_update(store: Arc<dyn Store>) {
    with_accounts(store.as_ref(), &[ACCOUNT]).await;
    let key = doc_key(ACCOUNT, REGION, KIND, "counter");
    // The document starts absent: the first writer creates it.
    let writers: Vec<_> = (0..CONCURRENT_WRITERS)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let outcome = store
                    .update_document(
                        &key,
                        Box::new(|current| {
                            let n = current.map_or(0, |doc| doc["n"].as_u64().expect("n"));
                            Ok((Some(json!({"n": n + 1})), Box::new(n + 1)))
                        }),
                    )
                    .await
                    .expect("update");
                applied::<u64>(outcome)
            })
        })
        .collect();
    each_saw_the_previous_commit(writers).await;
    assert_eq!(
        store.get_document(&key).await.expect("get"),
        Some(json!({"n": CONCURRENT_WRITERS })),
        "no update was lost"
    );
}

// ---------------------------------------------------------------- settings

pub async fn settings_are_put_and_replaced(store: Arc<dyn Store>) {
    assert_eq!(store.get_setting("signing-key").await.expect("get"), None);
    store
        .put_setting("signing-key", "first")
        .await
        .expect("put");
    store.put_setting("other", "untouched").await.expect("put");
    assert_eq!(
        store.get_setting("signing-key").await.expect("get"),
        Some("first".into())
    );
    store
        .put_setting("signing-key", "second")
        .await
        .expect("put again");
    assert_eq!(
        store.get_setting("signing-key").await.expect("get"),
        Some("second".into())
    );
    assert_eq!(
        store.get_setting("other").await.expect("get"),
        Some("untouched".into())
    );
}

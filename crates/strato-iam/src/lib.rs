//! IAM and STS for Strato.
//!
//! - [`policy`]: the policy language, a pure evaluator.
//! - [`Iam`]: users, groups, roles, managed and inline policies, access
//!   keys and STS sessions ([`Iam::iam_operation`], [`Iam::sts_operation`],
//!   both protocol-free: a [`Doc`] in, a [`Doc`] out), and the one
//!   authorizer every authenticated request passes ([`Iam::authorize`]).
//!
//! The authorizer caches, per access key, the principal and its parsed
//! policies; any IAM change drops the cache. Deciding a request is a map
//! lookup and a walk over a few statements: no lock held across it, no
//! database.
//!
//! Why over 800 lines: the authorizer's entry points (`authorize`,
//! `authorize_access`, `authorize_as`, `role_allows`) and the per-key
//! grants they share (built, cached and dropped together with the key index)
//! stay in one file so that every way in decides through the same
//! `decide_for`.

pub mod data;
mod iam_ops;
pub mod managed;
pub mod policy;
mod sts_ops;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::RwLock;
use strato_model::wire::{Doc, OpResult, ServiceError};

use crate::data::{DataError, DataFile, IamData, SessionKind};
use crate::policy::{
    decide, Denial, PolicyDocument, PolicyKind, PolicySet, Request, RequestContext,
    RequestPrincipal,
};

/// The query protocol's XML namespaces.
pub const IAM_XML_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
pub const STS_XML_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// SigV4 scope service names.
pub const IAM_SIGNING_NAME: &str = "iam";
pub const STS_SIGNING_NAME: &str = "sts";

/// Who calls an IAM or STS operation.
#[derive(Debug, Clone, Copy)]
pub struct IamCaller<'a> {
    pub account: &'a str,
    pub access_key_id: &'a str,
}

/// A secret the SigV4 verifier may accept, and what comes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub secret: String,
    pub account: String,
    /// A session's token, which the request must carry.
    pub token: Option<String>,
    /// A session's end, epoch seconds.
    pub expires: Option<i64>,
}

/// Why session credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// No token, or another session's.
    InvalidToken,
    /// Past the session's expiry.
    Expired,
}

/// A refused request: AWS's sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDenied {
    pub message: String,
}

/// The principal behind an access key, with its policies parsed.
#[derive(Debug)]
struct Grants {
    arn: String,
    user_id: String,
    username: Option<String>,
    principal: RequestPrincipal,
    identity: Vec<Arc<PolicyDocument>>,
    session: Option<Arc<PolicyDocument>>,
}

/// A function instance's credentials: a session of the function's
/// execution role, minted at the instance's cold start and held in memory
/// only (instances do not outlive the server).
#[derive(Debug, Clone)]
struct RoleKey {
    /// The role's account.
    account: String,
    role_name: String,
    session_name: String,
    /// What SigV4 verification accepts: the secret, the function's account,
    /// the token and the expiry.
    key: KeyEntry,
}

/// A request on a resource that may carry its own policy (a queue, a
/// topic, a bucket, a layer version): what [`Iam::authorize_access`]
/// decides with the caller's identity policies.
#[derive(Debug, Clone, Copy)]
pub struct ResourceAccess<'a> {
    /// `service:Operation`.
    pub action: &'a str,
    /// The resource's ARN.
    pub resource: &'a str,
    /// The account that owns the resource.
    pub owner: &'a str,
    /// The resource's policy document, if one is set.
    pub policy: Option<&'a str>,
}

/// Who asks [`Iam::authorize_as`].
#[derive(Debug, Clone, Copy)]
pub enum Accessor<'a> {
    /// A SigV4 caller: its access key and the account it signs for.
    Key {
        access_key_id: &'a str,
        account: &'a str,
    },
    /// An AWS service acting as itself (`s3.amazonaws.com`).
    Service(&'a str),
    /// A service acting with a role (EventBridge Scheduler with a
    /// schedule's `RoleArn`), as the session `session`.
    Role { role_arn: &'a str, session: &'a str },
    /// An unauthenticated caller.
    Anonymous,
}

/// Credentials issued to a function instance ([`Iam::issue_function_session`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSession {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Epoch seconds.
    pub expires: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error(transparent)]
    Data(#[from] DataError),
}

pub struct Iam {
    data: RwLock<IamData>,
    file: Option<DataFile>,
    /// Whether identity policies are enforced (`--iam enforce`).
    enforce: bool,
    keys: RwLock<HashMap<String, KeyEntry>>,
    role_keys: DashMap<String, RoleKey>,
    grants: DashMap<String, Option<Arc<Grants>>>,
    /// Principals whose identity is not asked, named once per key.
    unrestricted: DashMap<String, Arc<Grants>>,
    /// Resource policies parsed once, by their text (a queue's, a topic's,
    /// a bucket's); `None` for a text that does not parse.
    resource_policies: DashMap<String, Option<Arc<PolicyDocument>>>,
    /// The identity side of a principal whose policies are not consulted.
    everything: Arc<PolicyDocument>,
    /// Bumped by every change, so grants built from state a change has
    /// since replaced are not cached.
    generation: std::sync::atomic::AtomicU64,
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Iam {
    /// IAM state kept in `path` (created on first change).
    pub fn open(path: &Path, enforce: bool) -> Result<Iam, IamError> {
        let file = DataFile::new(path);
        let data = file.load()?;
        Ok(Iam::with_data(data, Some(file), enforce))
    }

    /// IAM state in memory only (tests).
    pub fn in_memory(enforce: bool) -> Iam {
        Iam::with_data(IamData::default(), None, enforce)
    }

    fn with_data(data: IamData, file: Option<DataFile>, enforce: bool) -> Iam {
        let iam = Iam {
            data: RwLock::new(data),
            file,
            enforce,
            keys: RwLock::new(HashMap::new()),
            role_keys: DashMap::new(),
            grants: DashMap::new(),
            unrestricted: DashMap::new(),
            resource_policies: DashMap::new(),
            everything: Arc::new(PolicyDocument::allow_all()),
            generation: std::sync::atomic::AtomicU64::new(0),
        };
        iam.reindex();
        iam
    }

    pub fn enforcing(&self) -> bool {
        self.enforce
    }

    /// Applies a change, saves, and drops what was derived from the old state.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut IamData) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let out = {
            let mut data = self.data.write();
            let out = f(&mut data)?;
            if let Some(file) = &self.file {
                file.save(&data)
                    .map_err(|e| ServiceError::internal(e.to_string()))?;
            }
            out
        };
        self.reindex();
        Ok(out)
    }

    fn reindex(&self) {
        let now = now_secs();
        let mut keys = HashMap::new();
        {
            let data = self.data.read();
            for (account, iam) in &data.accounts {
                for key in iam.access_keys.values().filter(|k| k.active) {
                    keys.insert(
                        key.id.clone(),
                        KeyEntry {
                            secret: key.secret.clone(),
                            account: account.clone(),
                            token: None,
                            expires: None,
                        },
                    );
                }
            }
            for (id, session) in &data.sessions {
                // Long-expired sessions are forgotten (kept an hour so
                // their callers hear "expired", not "invalid").
                if session.expires + 3600 < now {
                    continue;
                }
                keys.insert(
                    id.clone(),
                    KeyEntry {
                        secret: session.secret.clone(),
                        account: session.account.clone(),
                        token: Some(session.token.clone()),
                        expires: Some(session.expires),
                    },
                );
            }
        }
        *self.keys.write() = keys;
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.grants.clear();
        self.unrestricted.clear();
    }

    /// The secret of an IAM user's key, an STS session's key or a function
    /// instance's key.
    pub fn lookup_key(&self, access_key_id: &str) -> Option<KeyEntry> {
        if let Some(entry) = self.keys.read().get(access_key_id) {
            return Some(entry.clone());
        }
        self.role_keys.get(access_key_id).map(|k| k.key.clone())
    }

    /// Whether a request signed with `access_key_id` carrying
    /// `X-Amz-Security-Token: token` may go on: a session key needs its own
    /// token and stops at its expiry; other keys need nothing.
    pub fn check_session(
        &self,
        access_key_id: &str,
        token: Option<&str>,
    ) -> Result<(), SessionRefusal> {
        let Some(entry) = self.lookup_key(access_key_id) else {
            return Ok(());
        };
        let Some(expected) = entry.token.as_deref() else {
            return Ok(());
        };
        if token != Some(expected) {
            return Err(SessionRefusal::InvalidToken);
        }
        if entry.expires.is_some_and(|end| end <= now_secs()) {
            return Err(SessionRefusal::Expired);
        }
        Ok(())
    }

    /// Mints the credentials of a function instance of `account` (at its
    /// cold start): a session of the execution role `role_arn` named after
    /// the function, valid for `lifetime` seconds, with an `ASIA` key id, a
    /// secret and a session token the request must carry. Under
    /// enforcement they can do what the role's policies allow (evaluated
    /// live: a policy change applies at once), nothing when the role does
    /// not exist. Sessions expired for an hour are forgotten here.
    pub fn issue_function_session(
        &self,
        account: &str,
        role_arn: &str,
        function: &str,
        lifetime: i64,
    ) -> FunctionSession {
        let now = now_secs();
        let forgotten: Vec<String> = self
            .role_keys
            .iter()
            .filter(|k| k.key.expires.is_some_and(|end| end + 3600 < now))
            .map(|k| k.key().clone())
            .collect();
        for id in forgotten {
            self.role_keys.remove(&id);
            self.grants.remove(&id);
            self.unrestricted.remove(&id);
        }
        let (role_account, role_name) = parse_role_arn(role_arn).unwrap_or_else(|| {
            (
                account,
                role_arn.rsplit(['/', ':']).next().unwrap_or(role_arn),
            )
        });
        let access_key_id: String = iam_ops::new_id("ASIA").chars().take(20).collect();
        let session = FunctionSession {
            access_key_id: access_key_id.clone(),
            secret_access_key: iam_ops::new_secret(40),
            session_token: sts_ops::new_token(),
            expires: now + lifetime.max(1),
        };
        self.role_keys.insert(
            access_key_id,
            RoleKey {
                account: role_account.to_string(),
                role_name: role_name.to_string(),
                session_name: function.to_string(),
                key: KeyEntry {
                    secret: session.secret_access_key.clone(),
                    account: account.to_string(),
                    token: Some(session.session_token.clone()),
                    expires: Some(session.expires),
                },
            },
        );
        session
    }

    /// Whether `role_arn` names a role that exists and that
    /// `lambda.amazonaws.com` may assume.
    pub fn lambda_can_assume(&self, role_arn: &str) -> bool {
        self.service_can_assume(role_arn, "lambda.amazonaws.com")
    }

    /// Whether the service `service` (`scheduler.amazonaws.com`), acting
    /// with the role `role_arn` as session `session_name`, may perform
    /// `action` on `resource`: the role exists, its trust policy lets the
    /// service assume it, and its policies allow the action.
    pub fn service_role_allows(
        &self,
        service: &str,
        role_arn: &str,
        session_name: &str,
        action: &str,
        resource: &str,
    ) -> bool {
        self.service_can_assume(role_arn, service)
            && self.role_allows(role_arn, session_name, action, resource)
    }

    /// Whether `role_arn` names a role that exists and that the service
    /// principal `service` may assume.
    pub fn service_can_assume(&self, role_arn: &str, service: &str) -> bool {
        let Some((account, name)) = parse_role_arn(role_arn) else {
            return false;
        };
        let data = self.data.read();
        let Some(role) = data.accounts.get(account).and_then(|a| a.roles.get(name)) else {
            return false;
        };
        if role.arn != role_arn {
            return false;
        }
        let Some(trust) = role
            .trust
            .as_deref()
            .and_then(|t| PolicyDocument::parse(t, PolicyKind::Trust).ok())
        else {
            return false;
        };
        let principal = RequestPrincipal::Service(service.into());
        let context = RequestContext::new();
        let verdict = trust.evaluate(&Request {
            action: "sts:AssumeRole",
            resource: role_arn,
            principal: &principal,
            context: &context,
        });
        verdict.allowed && !verdict.denied
    }

    /// Whether the role `role_arn`, acting as session `session_name` (a
    /// service acting with a function's execution role, as Lambda's
    /// pollers do), may perform `action` on `resource` by its policies. A
    /// role that does not exist may do nothing.
    pub fn role_allows(
        &self,
        role_arn: &str,
        session_name: &str,
        action: &str,
        resource: &str,
    ) -> bool {
        let Some((account, name)) = parse_role_arn(role_arn) else {
            return false;
        };
        let grants = {
            let data = self.data.read();
            let Some(iam) = data.accounts.get(account) else {
                return false;
            };
            let Some(role) = iam.roles.get(name).filter(|r| r.arn == role_arn) else {
                return false;
            };
            role_session_grants(iam, role, account, session_name, None)
        };
        self.decide_for(&grants, action, resource, RequestContext::new(), None)
            .is_ok()
    }

    /// Whether `access_key_id` belongs to an IAM principal whose policies
    /// are enforced (not a root key, and enforcement is on).
    pub fn governs(&self, access_key_id: &str) -> bool {
        self.enforce && self.grants_for(access_key_id).is_some()
    }

    /// The one decision: may the holder of `access_key_id` perform `action`
    /// on `resource`? Account root keys (and any key IAM does not know)
    /// may do anything in their account; so may everyone when enforcement
    /// is off.
    pub fn authorize(
        &self,
        access_key_id: &str,
        action: &str,
        resource: &str,
        context: RequestContext,
    ) -> Result<(), AccessDenied> {
        if !self.enforce {
            return Ok(());
        }
        let Some(grants) = self.grants_for(access_key_id) else {
            return Ok(());
        };
        self.decide_for(&grants, action, resource, context, None)
    }

    /// The one decision for a request on a resource with its own policy
    /// (AWS's evaluation logic): an explicit deny in the identity or the
    /// resource policy wins; in the owner's account an allow in either
    /// suffices; from another account both must allow. Account root keys
    /// (and, with enforcement off, every key) count as allowed by their
    /// identity side, so across accounts the resource policy decides for
    /// them, and in their own account only its explicit denies bind them.
    /// `caller_account` is the account the key signs for.
    pub fn authorize_access(
        &self,
        access_key_id: &str,
        caller_account: &str,
        access: &ResourceAccess<'_>,
        context: RequestContext,
    ) -> Result<(), AccessDenied> {
        let governed = if self.enforce {
            self.grants_for(access_key_id)
        } else {
            None
        };
        self.decide_access(
            governed,
            || self.unrestricted_grants(access_key_id, caller_account),
            caller_account,
            access,
            context,
        )
    }

    /// [`Iam::authorize_access`] for whoever asks ([`Accessor`]): a
    /// SigV4 caller, an AWS service acting as itself (only the resource
    /// policy can let it in), a service acting with a role (the role's
    /// policies are its identity side under enforcement), or an anonymous
    /// caller (only a `*` principal admits it).
    pub fn authorize_as(
        &self,
        who: &Accessor<'_>,
        access: &ResourceAccess<'_>,
        context: RequestContext,
    ) -> Result<(), AccessDenied> {
        match who {
            Accessor::Key {
                access_key_id,
                account,
            } => self.authorize_access(access_key_id, account, access, context),
            Accessor::Service(service) => {
                let grants = outside_grants(
                    service,
                    RequestPrincipal::Service(service.to_string()),
                    &self.everything,
                );
                self.decide_outside(&grants, access, context)
            }
            Accessor::Anonymous => {
                let grants =
                    outside_grants("anonymous", RequestPrincipal::Anonymous, &self.everything);
                self.decide_outside(&grants, access, context)
            }
            Accessor::Role { role_arn, session } => {
                let Some((account, name)) = parse_role_arn(role_arn) else {
                    let grants = no_grants(role_arn);
                    return self.decide_outside(&grants, access, context);
                };
                let session_arn = format!("arn:aws:sts::{account}:assumed-role/{name}/{session}");
                let governed = self.enforce.then(|| {
                    let data = self.data.read();
                    let role = data
                        .accounts
                        .get(account)
                        .and_then(|iam| Some((iam, iam.roles.get(name)?)))
                        .filter(|(_, role)| role.arn == *role_arn);
                    Arc::new(match role {
                        Some((iam, role)) => role_session_grants(iam, role, account, session, None),
                        None => no_grants(&session_arn),
                    })
                });
                let unrestricted = || {
                    Arc::new(Grants {
                        principal: RequestPrincipal::Aws {
                            arn: session_arn.clone(),
                            account: account.to_string(),
                            role_arn: Some(role_arn.to_string()),
                        },
                        arn: session_arn.clone(),
                        user_id: String::new(),
                        username: None,
                        identity: vec![self.everything.clone()],
                        session: None,
                    })
                };
                self.decide_access(governed, unrestricted, account, access, context)
            }
        }
    }

    /// A principal outside every account (a service, an anonymous caller):
    /// nothing but the resource policy can let it in.
    fn decide_outside(
        &self,
        grants: &Grants,
        access: &ResourceAccess<'_>,
        context: RequestContext,
    ) -> Result<(), AccessDenied> {
        let policy = access.policy.and_then(|text| self.resource_policy(text));
        self.decide_for(
            grants,
            access.action,
            access.resource,
            context,
            Some((policy.as_deref(), true)),
        )
    }

    /// `governed`: the principal's grants when its policies are enforced;
    /// otherwise `unrestricted` names it with an identity side that allows
    /// everything.
    fn decide_access(
        &self,
        governed: Option<Arc<Grants>>,
        unrestricted: impl FnOnce() -> Arc<Grants>,
        caller_account: &str,
        access: &ResourceAccess<'_>,
        context: RequestContext,
    ) -> Result<(), AccessDenied> {
        let cross_account = access.owner != caller_account;
        let policy = access.policy.and_then(|text| self.resource_policy(text));
        let grants = match governed {
            Some(grants) => grants,
            // In its own account such a principal is bound only by the
            // resource policy's explicit denies.
            None if !cross_account && !policy.as_ref().is_some_and(|p| p.has_deny()) => {
                return Ok(())
            }
            None => unrestricted(),
        };
        self.decide_for(
            &grants,
            access.action,
            access.resource,
            context,
            Some((policy.as_deref(), cross_account)),
        )
    }

    /// A resource policy's parsed document, parsed once per text. A text
    /// that does not parse (the services validate what they store) grants
    /// nothing.
    fn resource_policy(&self, text: &str) -> Option<Arc<PolicyDocument>> {
        if let Some(cached) = self.resource_policies.get(text) {
            return cached.clone();
        }
        let parsed = PolicyDocument::parse(text, PolicyKind::Resource)
            .ok()
            .map(Arc::new);
        // Old texts (policies since replaced) are dropped together now and
        // then rather than tracked.
        if self.resource_policies.len() >= 4096 {
            self.resource_policies.clear();
        }
        self.resource_policies
            .insert(text.to_string(), parsed.clone());
        parsed
    }

    /// A principal whose identity policies are not consulted (a root key,
    /// or any key with enforcement off): named as it is, allowed whatever
    /// its identity side is asked. Built once per key.
    fn unrestricted_grants(&self, access_key_id: &str, account: &str) -> Arc<Grants> {
        if let Some(cached) = self.unrestricted.get(access_key_id) {
            return cached.clone();
        }
        let (user_id, arn) = self.identity_of(&IamCaller {
            account,
            access_key_id,
        });
        let grants = Arc::new(Grants {
            principal: RequestPrincipal::Aws {
                arn: arn.clone(),
                account: account.to_string(),
                role_arn: None,
            },
            arn,
            user_id,
            username: None,
            identity: vec![self.everything.clone()],
            session: None,
        });
        self.unrestricted
            .insert(access_key_id.to_string(), grants.clone());
        grants
    }

    fn decide_for(
        &self,
        grants: &Grants,
        action: &str,
        resource: &str,
        mut context: RequestContext,
        resource_policy: Option<(Option<&PolicyDocument>, bool)>,
    ) -> Result<(), AccessDenied> {
        // Services and anonymous callers have no principal keys.
        if let Some(account) = grants.principal.account() {
            context.insert("aws:PrincipalArn", grants.arn.as_str());
            context.insert("aws:PrincipalAccount", account);
            context.insert("aws:userid", grants.user_id.as_str());
        }
        if let Some(name) = &grants.username {
            context.insert("aws:username", name.as_str());
        }
        context.insert(
            "aws:CurrentTime",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        let set = PolicySet {
            identity: &grants.identity,
            session: grants.session.as_deref(),
            resource: resource_policy.and_then(|(p, _)| p),
            cross_account: resource_policy.is_some_and(|(_, cross)| cross),
        };
        decide(
            &set,
            &Request {
                action,
                resource,
                principal: &grants.principal,
                context: &context,
            },
        )
        .map_err(|denial: Denial| AccessDenied {
            message: denial.message(&grants.arn, action, resource),
        })
    }

    fn grants_for(&self, access_key_id: &str) -> Option<Arc<Grants>> {
        if let Some(cached) = self.grants.get(access_key_id) {
            return cached.clone();
        }
        let built = self.build_grants(access_key_id).map(Arc::new);
        self.grants.insert(access_key_id.to_string(), built.clone());
        built
    }

    fn build_grants(&self, access_key_id: &str) -> Option<Grants> {
        let data = self.data.read();
        if let Some(role_key) = self.role_keys.get(access_key_id) {
            let iam = data.accounts.get(&role_key.account);
            let role = iam.and_then(|a| a.roles.get(&role_key.role_name));
            return Some(match (iam, role) {
                (Some(iam), Some(role)) => {
                    role_session_grants(iam, role, &role_key.account, &role_key.session_name, None)
                }
                // The role is gone: the function's credentials allow nothing.
                _ => no_grants(&format!(
                    "arn:aws:sts::{}:assumed-role/{}/{}",
                    role_key.account, role_key.role_name, role_key.session_name
                )),
            });
        }
        if let Some(session) = data.sessions.get(access_key_id) {
            let iam = data.accounts.get(&session.account)?;
            let session_policy = session
                .policy
                .as_deref()
                .and_then(|p| PolicyDocument::parse(p, PolicyKind::Identity).ok())
                .map(Arc::new);
            return match &session.kind {
                SessionKind::AssumedRole {
                    role_name,
                    session_name,
                    ..
                } => Some(match iam.roles.get(role_name) {
                    Some(role) => role_session_grants(
                        iam,
                        role,
                        &session.account,
                        session_name,
                        session_policy,
                    ),
                    None => no_grants(&format!(
                        "arn:aws:sts::{}:assumed-role/{role_name}/{session_name}",
                        session.account
                    )),
                }),
                SessionKind::User { user: Some(user) } => iam
                    .users
                    .get(user)
                    .map(|u| user_grants(iam, u, &session.account)),
                // A root session is as powerful as the root.
                SessionKind::User { user: None } => None,
            };
        }
        for (account, iam) in &data.accounts {
            if let Some(key) = iam.access_keys.get(access_key_id) {
                return iam
                    .users
                    .get(&key.user)
                    .map(|u| user_grants(iam, u, account));
            }
        }
        None
    }

    /// GetCallerIdentity's answer for a key: (UserId, Arn).
    fn identity_of(&self, caller: &IamCaller<'_>) -> (String, String) {
        if let Some(role_key) = self.role_keys.get(caller.access_key_id) {
            let data = self.data.read();
            let role_id = data
                .accounts
                .get(&role_key.account)
                .and_then(|a| a.roles.get(&role_key.role_name))
                .map(|r| r.id.clone())
                .unwrap_or_default();
            return (
                format!("{role_id}:{}", role_key.session_name),
                format!(
                    "arn:aws:sts::{}:assumed-role/{}/{}",
                    role_key.account, role_key.role_name, role_key.session_name
                ),
            );
        }
        let data = self.data.read();
        if let Some(session) = data.sessions.get(caller.access_key_id) {
            match &session.kind {
                SessionKind::AssumedRole {
                    role_name,
                    role_id,
                    session_name,
                } => {
                    return (
                        format!("{role_id}:{session_name}"),
                        format!(
                            "arn:aws:sts::{}:assumed-role/{role_name}/{session_name}",
                            session.account
                        ),
                    )
                }
                SessionKind::User { user: Some(user) } => {
                    if let Some(u) = data
                        .accounts
                        .get(&session.account)
                        .and_then(|a| a.users.get(user))
                    {
                        return (u.id.clone(), u.arn.clone());
                    }
                }
                SessionKind::User { user: None } => {}
            }
        }
        if let Some(iam) = data.accounts.get(caller.account) {
            if let Some(key) = iam.access_keys.get(caller.access_key_id) {
                if let Some(u) = iam.users.get(&key.user) {
                    return (u.id.clone(), u.arn.clone());
                }
            }
        }
        (
            caller.account.to_string(),
            format!("arn:aws:iam::{}:root", caller.account),
        )
    }

    /// The caller's user name, when the caller is an IAM user (GetUser
    /// without a name answers with it).
    fn caller_user(&self, caller: &IamCaller<'_>) -> Option<String> {
        let data = self.data.read();
        let iam = data.accounts.get(caller.account)?;
        iam.access_keys
            .get(caller.access_key_id)
            .map(|k| k.user.clone())
    }

    /// IAM over the query protocol: `Action` and its input.
    pub fn iam_operation(&self, caller: &IamCaller<'_>, action: &str, input: &Doc) -> OpResult {
        iam_ops::operation(self, caller, action, input)
    }

    /// STS over the query protocol.
    pub fn sts_operation(&self, caller: &IamCaller<'_>, action: &str, input: &Doc) -> OpResult {
        sts_ops::operation(self, caller, action, input)
    }
}

/// (account, role name) of `arn:aws:iam::ACCOUNT:role/PATH/NAME`.
pub fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, rest) = rest.split_once(':')?;
    let path = rest.strip_prefix("role/")?;
    let name = path.rsplit('/').next()?;
    (strato_model::account::is_account_id(account) && !name.is_empty()).then_some((account, name))
}

/// A principal of no account: its identity side is not asked (it has
/// none), so the resource policy alone decides, as across accounts.
fn outside_grants(
    name: &str,
    principal: RequestPrincipal,
    everything: &Arc<PolicyDocument>,
) -> Grants {
    Grants {
        arn: name.to_string(),
        user_id: String::new(),
        username: None,
        principal,
        identity: vec![everything.clone()],
        session: None,
    }
}

fn no_grants(arn: &str) -> Grants {
    Grants {
        arn: arn.to_string(),
        user_id: String::new(),
        username: None,
        principal: RequestPrincipal::Aws {
            arn: arn.to_string(),
            account: String::new(),
            role_arn: None,
        },
        identity: Vec::new(),
        session: None,
    }
}

/// The parsed documents of an entity's inline and attached policies.
fn entity_policies(iam: &data::AccountIam, entity: &data::Entity) -> Vec<Arc<PolicyDocument>> {
    let mut out = Vec::new();
    for text in entity.inline.values() {
        if let Ok(doc) = PolicyDocument::parse(text, PolicyKind::Identity) {
            out.push(Arc::new(doc));
        }
    }
    for arn in &entity.attached {
        if let Some(text) = managed_document(iam, arn) {
            if let Ok(doc) = PolicyDocument::parse(&text, PolicyKind::Identity) {
                out.push(Arc::new(doc));
            }
        }
    }
    out
}

/// The default version's document of a managed policy (AWS's or the
/// account's).
fn managed_document(iam: &data::AccountIam, arn: &str) -> Option<String> {
    if let Some((_, _, doc)) = managed::find(arn) {
        return Some(doc.to_string());
    }
    let policy = iam.policies.get(arn)?;
    policy
        .versions
        .iter()
        .find(|v| v.id == policy.default_version)
        .map(|v| v.document.clone())
}

fn user_grants(iam: &data::AccountIam, user: &data::Entity, account: &str) -> Grants {
    let mut identity = entity_policies(iam, user);
    for group in &user.groups {
        if let Some(g) = iam.groups.get(group) {
            identity.extend(entity_policies(iam, g));
        }
    }
    Grants {
        arn: user.arn.clone(),
        user_id: user.id.clone(),
        username: Some(user.name.clone()),
        principal: RequestPrincipal::Aws {
            arn: user.arn.clone(),
            account: account.to_string(),
            role_arn: None,
        },
        identity,
        session: None,
    }
}

fn role_session_grants(
    iam: &data::AccountIam,
    role: &data::Entity,
    account: &str,
    session_name: &str,
    session: Option<Arc<PolicyDocument>>,
) -> Grants {
    let arn = format!(
        "arn:aws:sts::{account}:assumed-role/{}/{session_name}",
        role.name
    );
    Grants {
        arn: arn.clone(),
        user_id: format!("{}:{session_name}", role.id),
        username: None,
        principal: RequestPrincipal::Aws {
            arn,
            account: account.to_string(),
            role_arn: Some(role.arn.clone()),
        },
        identity: entity_policies(iam, role),
        session,
    }
}

#[cfg(test)]
mod tests;

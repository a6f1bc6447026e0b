//! IAM's operations: users, groups and roles (which hold policies alike),
//! managed policies and their versions, access keys.
//!
//! Why over 800 lines: some sixty operations with AWS's validation and
//! error wording each; the three entity kinds already share one set of
//! functions (`Kind`), and splitting by entity would only scatter them.

use strato_model::wire::{Doc, OpResult, ServiceError};

use crate::data::{AccountIam, Entity, IamData, ManagedPolicy, PolicyVersion, UserKey};
use crate::managed::{self, AWS_MANAGED};
use crate::policy::{PolicyDocument, PolicyKind};
use crate::{now_secs, Iam, IamCaller};

fn err(code: &'static str, status: u16, message: impl Into<String>) -> ServiceError {
    ServiceError {
        status,
        ..ServiceError::new(code, message)
    }
}

fn no_such(message: impl Into<String>) -> ServiceError {
    err("NoSuchEntity", 404, message)
}

fn already_exists(message: impl Into<String>) -> ServiceError {
    err("EntityAlreadyExists", 409, message)
}

fn conflict(message: impl Into<String>) -> ServiceError {
    err("DeleteConflict", 409, message)
}

fn limit(message: impl Into<String>) -> ServiceError {
    err("LimitExceeded", 409, message)
}

fn malformed(message: impl Into<String>) -> ServiceError {
    err("MalformedPolicyDocument", 400, message)
}

fn validation(message: impl Into<String>) -> ServiceError {
    err("ValidationError", 400, message)
}

fn required<'a>(input: &'a Doc, member: &str, wire_name: &str) -> Result<&'a str, ServiceError> {
    input.get(member).and_then(Doc::as_str).ok_or_else(|| {
        validation(format!(
            "1 validation error detected: Value null at '{wire_name}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// Names of users, groups, roles and policies: `[\w+=,.@-]+`, 1 to `max`.
fn check_name(value: &str, wire_name: &str, max: usize) -> Result<(), ServiceError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else if value.len() > max {
        Err(validation(format!(
            "1 validation error detected: Value '{value}' at '{wire_name}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        )))
    } else {
        Err(validation(format!(
            "1 validation error detected: Value '{value}' at '{wire_name}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )))
    }
}

fn path_of(input: &Doc) -> Result<String, ServiceError> {
    let path = input.get("Path").and_then(Doc::as_str).unwrap_or("/");
    if path.starts_with('/') && path.ends_with('/') && path.len() <= 512 {
        Ok(path.to_string())
    } else {
        Err(validation(format!(
            "1 validation error detected: Value '{path}' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)"
        )))
    }
}

/// AWS's unique ids: a four-letter kind and 17 upper-case letters/digits.
pub(crate) fn new_id(prefix: &str) -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..17)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{prefix}{tail}")
}

pub(crate) fn new_secret(len: usize) -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    text.chars().take(len).collect()
}

/// IAM answers policy documents URL-encoded (the SDKs decode them).
pub(crate) fn encode_document(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn ts(secs: i64) -> Doc {
    // Epoch seconds fit an f64 exactly.
    #[allow(clippy::cast_precision_loss)]
    Doc::Timestamp(secs as f64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Group,
    Role,
}

impl Kind {
    fn lower(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
            Kind::Role => "role",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
            Kind::Role => "Role",
        }
    }

    fn id_prefix(self) -> &'static str {
        match self {
            Kind::User => "AIDA",
            Kind::Group => "AGPA",
            Kind::Role => "AROA",
        }
    }

    /// The input member naming the entity (`UserName`, ...).
    fn name_member(self) -> &'static str {
        match self {
            Kind::User => "UserName",
            Kind::Group => "GroupName",
            Kind::Role => "RoleName",
        }
    }

    fn wire_name(self) -> &'static str {
        match self {
            Kind::User => "userName",
            Kind::Group => "groupName",
            Kind::Role => "roleName",
        }
    }

    fn max_name(self) -> usize {
        match self {
            Kind::User | Kind::Role => 64,
            Kind::Group => 128,
        }
    }

    /// (quota name, bytes) of inline policies.
    fn inline_quota(self) -> (&'static str, usize) {
        match self {
            Kind::User => ("UserPolicySize", 2048),
            Kind::Group => ("GroupPolicySize", 5120),
            Kind::Role => ("RolePolicySize", 10240),
        }
    }

    fn map(self, iam: &mut AccountIam) -> &mut std::collections::BTreeMap<String, Entity> {
        match self {
            Kind::User => &mut iam.users,
            Kind::Group => &mut iam.groups,
            Kind::Role => &mut iam.roles,
        }
    }

    fn map_ref(self, iam: &AccountIam) -> &std::collections::BTreeMap<String, Entity> {
        match self {
            Kind::User => &iam.users,
            Kind::Group => &iam.groups,
            Kind::Role => &iam.roles,
        }
    }

    fn not_found(self, name: &str) -> ServiceError {
        no_such(format!(
            "The {} with name {name} cannot be found.",
            self.lower()
        ))
    }

    fn describe(self, e: &Entity, full: bool) -> Doc {
        let mut doc = Doc::map()
            .with("Path", e.path.as_str())
            .with(&format!("{}Name", self.title()), e.name.as_str())
            .with(&format!("{}Id", self.title()), e.id.as_str())
            .with("Arn", e.arn.as_str())
            .with("CreateDate", ts(e.created));
        if self == Kind::Role {
            doc = doc
                .with_opt(
                    "AssumeRolePolicyDocument",
                    e.trust.as_deref().map(encode_document),
                )
                .with_opt("Description", e.description.as_deref())
                .with("MaxSessionDuration", e.max_session_duration.unwrap_or(3600));
            if full {
                doc = doc.with("RoleLastUsed", Doc::map());
            }
        }
        if !e.tags.is_empty() && (full || self == Kind::Role) {
            doc = doc.with("Tags", Doc::tag_list(e.tags.iter().map(|(k, v)| (k, v))));
        }
        doc
    }
}

/// `Marker`/`MaxItems` paging over an ordered list.
fn page(items: Vec<Doc>, input: &Doc, member: &str) -> Doc {
    let start = input
        .get("Marker")
        .and_then(Doc::as_str)
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(0);
    let max = input
        .get("MaxItems")
        .and_then(Doc::as_i64)
        .and_then(|m| usize::try_from(m).ok())
        .filter(|m| *m > 0)
        .unwrap_or(100);
    let total = items.len();
    let end = start.saturating_add(max).min(total);
    let slice: Vec<Doc> = items
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect();
    let doc = Doc::map().with(member, Doc::List(slice));
    if end < total {
        doc.with("IsTruncated", Doc::Bool(true))
            .with("Marker", end.to_string())
    } else {
        doc.with("IsTruncated", Doc::Bool(false))
    }
}

fn account<'a>(data: &'a mut IamData, id: &str) -> &'a mut AccountIam {
    data.accounts.entry(id.to_string()).or_default()
}

fn parse_document(text: &str, kind: PolicyKind) -> Result<(), ServiceError> {
    PolicyDocument::parse(text, kind)
        .map(|_| ())
        .map_err(|e| malformed(e.0))
}

/// Policy documents arrive URL-encoded from some clients, JSON from most.
fn document_member<'a>(input: &'a Doc, member: &str, wire: &str) -> Result<&'a str, ServiceError> {
    required(input, member, wire)
}

pub(crate) fn operation(iam: &Iam, caller: &IamCaller<'_>, action: &str, input: &Doc) -> OpResult {
    let acct = caller.account;
    match action {
        "CreateUser" => create_entity(iam, acct, Kind::User, input),
        "CreateGroup" => create_entity(iam, acct, Kind::Group, input),
        "CreateRole" => create_entity(iam, acct, Kind::Role, input),
        "GetUser" => {
            let name = match input.get("UserName").and_then(Doc::as_str) {
                Some(name) => name.to_string(),
                None => match iam.caller_user(caller) {
                    Some(name) => name,
                    None => {
                        return Ok(Doc::map().with(
                            "User",
                            Doc::map()
                                .with("UserId", acct)
                                .with("Arn", format!("arn:aws:iam::{acct}:root"))
                                .with("CreateDate", ts(0)),
                        ))
                    }
                },
            };
            get_entity(iam, acct, Kind::User, &name)
        }
        "GetRole" => get_entity(
            iam,
            acct,
            Kind::Role,
            required(input, "RoleName", "roleName")?,
        ),
        "GetGroup" => get_group(iam, acct, input),
        "ListUsers" => list_entities(iam, acct, Kind::User, input, "Users"),
        "ListGroups" => list_entities(iam, acct, Kind::Group, input, "Groups"),
        "ListRoles" => list_entities(iam, acct, Kind::Role, input, "Roles"),
        "DeleteUser" => delete_entity(iam, acct, Kind::User, input),
        "DeleteGroup" => delete_entity(iam, acct, Kind::Group, input),
        "DeleteRole" => delete_entity(iam, acct, Kind::Role, input),
        "UpdateRole" => update_role(iam, acct, input),
        "UpdateAssumeRolePolicy" => update_trust(iam, acct, input),
        "TagRole" | "TagUser" => tag(iam, acct, action, input),
        "ListRoleTags" | "ListUserTags" => list_tags(iam, acct, action, input),
        "AddUserToGroup" => group_membership(iam, acct, input, true),
        "RemoveUserFromGroup" => group_membership(iam, acct, input, false),
        "ListGroupsForUser" => groups_for_user(iam, acct, input),
        "PutUserPolicy" => put_inline(iam, acct, Kind::User, input),
        "PutGroupPolicy" => put_inline(iam, acct, Kind::Group, input),
        "PutRolePolicy" => put_inline(iam, acct, Kind::Role, input),
        "GetUserPolicy" => get_inline(iam, acct, Kind::User, input),
        "GetGroupPolicy" => get_inline(iam, acct, Kind::Group, input),
        "GetRolePolicy" => get_inline(iam, acct, Kind::Role, input),
        "DeleteUserPolicy" => delete_inline(iam, acct, Kind::User, input),
        "DeleteGroupPolicy" => delete_inline(iam, acct, Kind::Group, input),
        "DeleteRolePolicy" => delete_inline(iam, acct, Kind::Role, input),
        "ListUserPolicies" => list_inline(iam, acct, Kind::User, input),
        "ListGroupPolicies" => list_inline(iam, acct, Kind::Group, input),
        "ListRolePolicies" => list_inline(iam, acct, Kind::Role, input),
        "AttachUserPolicy" => attach(iam, acct, Kind::User, input, true),
        "AttachGroupPolicy" => attach(iam, acct, Kind::Group, input, true),
        "AttachRolePolicy" => attach(iam, acct, Kind::Role, input, true),
        "DetachUserPolicy" => attach(iam, acct, Kind::User, input, false),
        "DetachGroupPolicy" => attach(iam, acct, Kind::Group, input, false),
        "DetachRolePolicy" => attach(iam, acct, Kind::Role, input, false),
        "ListAttachedUserPolicies" => list_attached(iam, acct, Kind::User, input),
        "ListAttachedGroupPolicies" => list_attached(iam, acct, Kind::Group, input),
        "ListAttachedRolePolicies" => list_attached(iam, acct, Kind::Role, input),
        "CreatePolicy" => create_policy(iam, acct, input),
        "GetPolicy" => get_policy(iam, acct, input),
        "DeletePolicy" => delete_policy(iam, acct, input),
        "ListPolicies" => list_policies(iam, acct, input),
        "CreatePolicyVersion" => create_policy_version(iam, acct, input),
        "GetPolicyVersion" => get_policy_version(iam, acct, input),
        "ListPolicyVersions" => list_policy_versions(iam, acct, input),
        "DeletePolicyVersion" => delete_policy_version(iam, acct, input),
        "SetDefaultPolicyVersion" => set_default_version(iam, acct, input),
        "CreateAccessKey" => create_access_key(iam, caller, input),
        "ListAccessKeys" => list_access_keys(iam, caller, input),
        "DeleteAccessKey" => delete_access_key(iam, caller, input),
        "UpdateAccessKey" => update_access_key(iam, caller, input),
        _ => Err(err(
            "InvalidAction",
            400,
            format!("Could not find operation {action} for version 2010-05-08"),
        )),
    }
}

fn create_entity(iam: &Iam, acct: &str, kind: Kind, input: &Doc) -> OpResult {
    let name = required(input, kind.name_member(), kind.wire_name())?;
    check_name(name, kind.wire_name(), kind.max_name())?;
    let path = path_of(input)?;
    let trust = if kind == Kind::Role {
        let text = document_member(
            input,
            "AssumeRolePolicyDocument",
            "assumeRolePolicyDocument",
        )?;
        if text.len() > 2048 {
            return Err(limit("Cannot exceed quota for ACLSizePerRole: 2048"));
        }
        parse_document(text, PolicyKind::Trust)?;
        Some(text.to_string())
    } else {
        None
    };
    let max_session_duration = match input.get("MaxSessionDuration").and_then(Doc::as_i64) {
        Some(d) if !(3600..=43200).contains(&d) => {
            return Err(validation(format!(
                "1 validation error detected: Value '{d}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value {} 3600",
                if d < 3600 { "greater than or equal to" } else { "less than or equal to" }
            )))
        }
        Some(d) => Some(d),
        None if kind == Kind::Role => Some(3600),
        None => None,
    };
    let entity = Entity {
        name: name.to_string(),
        id: new_id(kind.id_prefix()),
        arn: format!("arn:aws:iam::{acct}:{}{path}{name}", kind.lower()),
        path,
        created: now_secs(),
        trust,
        description: input
            .get("Description")
            .and_then(Doc::as_str)
            .map(str::to_string),
        max_session_duration,
        tags: input.tag_pairs("Tags"),
        ..Entity::default()
    };
    let doc = kind.describe(&entity, false);
    iam.change(|data| {
        let map = kind.map(account(data, acct));
        // Names are unique case-insensitively.
        if map.keys().any(|k| k.eq_ignore_ascii_case(name)) {
            return Err(already_exists(format!(
                "{} with name {name} already exists.",
                kind.title()
            )));
        }
        map.insert(name.to_string(), entity);
        Ok(())
    })?;
    Ok(Doc::map().with(kind.title(), doc))
}

fn with_entity<T>(
    iam: &Iam,
    acct: &str,
    kind: Kind,
    name: &str,
    f: impl FnOnce(&AccountIam, &Entity) -> T,
) -> Result<T, ServiceError> {
    let data = iam.data.read();
    let account = data.accounts.get(acct);
    let entity = account
        .and_then(|a| kind.map_ref(a).get(name))
        .ok_or_else(|| kind.not_found(name))?;
    Ok(f(account.ok_or_else(|| kind.not_found(name))?, entity))
}

fn change_entity<T>(
    iam: &Iam,
    acct: &str,
    kind: Kind,
    name: &str,
    f: impl FnOnce(&mut Entity) -> Result<T, ServiceError>,
) -> Result<T, ServiceError> {
    iam.change(|data| {
        let entity = kind
            .map(account(data, acct))
            .get_mut(name)
            .ok_or_else(|| kind.not_found(name))?;
        f(entity)
    })
}

fn get_entity(iam: &Iam, acct: &str, kind: Kind, name: &str) -> OpResult {
    with_entity(iam, acct, kind, name, |_, e| {
        Doc::map().with(kind.title(), kind.describe(e, true))
    })
}

fn get_group(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let name = required(input, "GroupName", "groupName")?;
    with_entity(iam, acct, Kind::Group, name, |a, g| {
        let users: Vec<Doc> = a
            .users
            .values()
            .filter(|u| u.groups.iter().any(|n| n == name))
            .map(|u| Kind::User.describe(u, false))
            .collect();
        Doc::map()
            .with("Group", Kind::Group.describe(g, false))
            .with("Users", Doc::List(users))
            .with("IsTruncated", Doc::Bool(false))
    })
}

fn list_entities(iam: &Iam, acct: &str, kind: Kind, input: &Doc, member: &str) -> OpResult {
    let prefix = input.get("PathPrefix").and_then(Doc::as_str).unwrap_or("/");
    let data = iam.data.read();
    let items: Vec<Doc> = data
        .accounts
        .get(acct)
        .map(|a| {
            kind.map_ref(a)
                .values()
                .filter(|e| e.path.starts_with(prefix))
                .map(|e| kind.describe(e, false))
                .collect()
        })
        .unwrap_or_default();
    Ok(page(items, input, member))
}

fn delete_entity(iam: &Iam, acct: &str, kind: Kind, input: &Doc) -> OpResult {
    let name = required(input, kind.name_member(), kind.wire_name())?.to_string();
    iam.change(|data| {
        let a = account(data, acct);
        let entity = kind
            .map_ref(a)
            .get(&name)
            .ok_or_else(|| kind.not_found(&name))?;
        if !entity.attached.is_empty() {
            return Err(conflict(
                "Cannot delete entity, must detach all policies first.",
            ));
        }
        if !entity.inline.is_empty() {
            return Err(conflict(
                "Cannot delete entity, must delete policies first.",
            ));
        }
        match kind {
            Kind::User => {
                if a.access_keys.values().any(|k| k.user == name) {
                    return Err(conflict(
                        "Cannot delete entity, must delete access keys first.",
                    ));
                }
                if !entity.groups.is_empty() {
                    return Err(conflict(
                        "Cannot delete entity, must remove users from group first.",
                    ));
                }
            }
            Kind::Group => {
                if a.users.values().any(|u| u.groups.contains(&name)) {
                    return Err(conflict(
                        "Cannot delete entity, must remove users from group first.",
                    ));
                }
            }
            Kind::Role => {}
        }
        kind.map(a).remove(&name);
        Ok(Doc::map())
    })
}

fn update_role(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let name = required(input, "RoleName", "roleName")?;
    let description = input
        .get("Description")
        .and_then(Doc::as_str)
        .map(str::to_string);
    let duration = input.get("MaxSessionDuration").and_then(Doc::as_i64);
    if let Some(d) = duration.filter(|d| !(3600..=43200).contains(d)) {
        return Err(validation(format!(
            "The requested MaxSessionDuration {d} is invalid. It must be between 3600 and 43200 seconds."
        )));
    }
    change_entity(iam, acct, Kind::Role, name, |role| {
        if description.is_some() {
            role.description = description;
        }
        if duration.is_some() {
            role.max_session_duration = duration;
        }
        Ok(Doc::map())
    })
}

fn update_trust(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let name = required(input, "RoleName", "roleName")?;
    let text = required(input, "PolicyDocument", "policyDocument")?;
    if text.len() > 2048 {
        return Err(limit("Cannot exceed quota for ACLSizePerRole: 2048"));
    }
    parse_document(text, PolicyKind::Trust)?;
    change_entity(iam, acct, Kind::Role, name, |role| {
        role.trust = Some(text.to_string());
        Ok(Doc::map())
    })
}

fn tagged_kind(action: &str) -> Kind {
    if action.contains("Role") {
        Kind::Role
    } else {
        Kind::User
    }
}

fn tag(iam: &Iam, acct: &str, action: &str, input: &Doc) -> OpResult {
    let kind = tagged_kind(action);
    let name = required(input, kind.name_member(), kind.wire_name())?;
    let tags = input.tag_pairs("Tags");
    change_entity(iam, acct, kind, name, |e| {
        for (k, v) in tags {
            e.tags.retain(|(old, _)| *old != k);
            e.tags.push((k, v));
        }
        Ok(Doc::map())
    })
}

fn list_tags(iam: &Iam, acct: &str, action: &str, input: &Doc) -> OpResult {
    let kind = tagged_kind(action);
    let name = required(input, kind.name_member(), kind.wire_name())?;
    with_entity(iam, acct, kind, name, |_, e| {
        Doc::map()
            .with("Tags", Doc::tag_list(e.tags.iter().map(|(k, v)| (k, v))))
            .with("IsTruncated", Doc::Bool(false))
    })
}

fn group_membership(iam: &Iam, acct: &str, input: &Doc, add: bool) -> OpResult {
    let group = required(input, "GroupName", "groupName")?.to_string();
    let user = required(input, "UserName", "userName")?.to_string();
    iam.change(|data| {
        let a = account(data, acct);
        if !a.groups.contains_key(&group) {
            return Err(Kind::Group.not_found(&group));
        }
        let u = a
            .users
            .get_mut(&user)
            .ok_or_else(|| Kind::User.not_found(&user))?;
        u.groups.retain(|g| *g != group);
        if add {
            u.groups.push(group.clone());
        }
        Ok(Doc::map())
    })
}

fn groups_for_user(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let user = required(input, "UserName", "userName")?;
    with_entity(iam, acct, Kind::User, user, |a, u| {
        let groups: Vec<Doc> = u
            .groups
            .iter()
            .filter_map(|g| a.groups.get(g))
            .map(|g| Kind::Group.describe(g, false))
            .collect();
        page(groups, input, "Groups")
    })
}

fn put_inline(iam: &Iam, acct: &str, kind: Kind, input: &Doc) -> OpResult {
    let name = required(input, kind.name_member(), kind.wire_name())?;
    let policy_name = required(input, "PolicyName", "policyName")?;
    check_name(policy_name, "policyName", 128)?;
    let text = required(input, "PolicyDocument", "policyDocument")?;
    parse_document(text, PolicyKind::Identity)?;
    let (quota, max) = kind.inline_quota();
    change_entity(iam, acct, kind, name, |e| {
        let others: usize = e
            .inline
            .iter()
            .filter(|(n, _)| *n != policy_name)
            .map(|(_, d)| compact_len(d))
            .sum();
        if others + compact_len(text) > max {
            return Err(limit(format!("Cannot exceed quota for {quota}: {max}")));
        }
        e.inline.insert(policy_name.to_string(), text.to_string());
        Ok(Doc::map())
    })
}

/// A document's size as AWS counts it: without whitespace.
fn compact_len(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

fn get_inline(iam: &Iam, acct: &str, kind: Kind, input: &Doc) -> OpResult {
    let name = required(input, kind.name_member(), kind.wire_name())?;
    let policy_name = required(input, "PolicyName", "policyName")?;
    with_entity(iam, acct, kind, name, |_, e| {
        e.inline.get(policy_name).map(|text| {
            Doc::map()
                .with(kind.name_member(), name)
                .with("PolicyName", policy_name)
                .with("PolicyDocument", encode_document(text))
        })
    })?
    .ok_or_else(|| {
        no_such(format!(
            "The {} policy with name {policy_name} cannot be found.",
            kind.lower()
        ))
    })
}

fn delete_inline(iam: &Iam, acct: &str, kind: Kind, input: &Doc) -> OpResult {
    let name = required(input, kind.name_member(), kind.wire_name())?;
    let policy_name = required(input, "PolicyName", "policyName")?;
    change_entity(iam, acct, kind, name, |e| {
        e.inline
            .remove(policy_name)
            .map(|_| Doc::map())
            .ok_or_else(|| {
                no_such(format!(
                    "The {} policy with name {policy_name} cannot be found.",
                    kind.lower()
                ))
            })
    })
}

fn list_inline(iam: &Iam, acct: &str, kind: Kind, input: &Doc) -> OpResult {
    let name = required(input, kind.name_member(), kind.wire_name())?;
    with_entity(iam, acct, kind, name, |_, e| {
        let names = e.inline.keys().map(|n| Doc::from(n.as_str())).collect();
        page(names, input, "PolicyNames")
    })
}

/// (name, attachable) of a managed policy visible to `acct`.
fn policy_name_of(a: Option<&AccountIam>, arn: &str) -> Option<String> {
    if let Some((_, name, _)) = managed::find(arn) {
        return Some(name.to_string());
    }
    a?.policies.get(arn).map(|p| p.name.clone())
}

fn attach(iam: &Iam, acct: &str, kind: Kind, input: &Doc, add: bool) -> OpResult {
    let name = required(input, kind.name_member(), kind.wire_name())?.to_string();
    let arn = required(input, "PolicyArn", "policyArn")?.to_string();
    if !arn.starts_with("arn:") || arn.split(':').count() < 6 {
        return Err(validation("Invalid ARN:  Could not be parsed!"));
    }
    iam.change(|data| {
        let a = account(data, acct);
        let known = policy_name_of(Some(a), &arn).is_some();
        let entity = kind
            .map(a)
            .get_mut(&name)
            .ok_or_else(|| kind.not_found(&name))?;
        if add {
            if !known {
                return Err(no_such(format!(
                    "Policy {arn} does not exist or is not attachable."
                )));
            }
            if !entity.attached.contains(&arn) {
                if entity.attached.len() >= 10 {
                    return Err(limit(format!(
                        "Cannot exceed quota for PoliciesPer{}: 10",
                        kind.title()
                    )));
                }
                entity.attached.push(arn);
            }
        } else {
            let before = entity.attached.len();
            entity.attached.retain(|p| *p != arn);
            if entity.attached.len() == before {
                return Err(no_such(format!("Policy {arn} was not found.")));
            }
        }
        Ok(Doc::map())
    })
}

fn list_attached(iam: &Iam, acct: &str, kind: Kind, input: &Doc) -> OpResult {
    let name = required(input, kind.name_member(), kind.wire_name())?;
    with_entity(iam, acct, kind, name, |a, e| {
        let items = e
            .attached
            .iter()
            .map(|arn| {
                Doc::map()
                    .with(
                        "PolicyName",
                        policy_name_of(Some(a), arn).unwrap_or_default(),
                    )
                    .with("PolicyArn", arn.as_str())
            })
            .collect();
        page(items, input, "AttachedPolicies")
    })
}

fn attachment_count(a: Option<&AccountIam>, arn: &str) -> i64 {
    let Some(a) = a else { return 0 };
    let n = a
        .users
        .values()
        .chain(a.groups.values())
        .chain(a.roles.values())
        .filter(|e| e.attached.iter().any(|p| p == arn))
        .count();
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn describe_policy(p: &ManagedPolicy, attachments: i64) -> Doc {
    Doc::map()
        .with("PolicyName", p.name.as_str())
        .with("PolicyId", p.id.as_str())
        .with("Arn", p.arn.as_str())
        .with("Path", p.path.as_str())
        .with("DefaultVersionId", p.default_version.as_str())
        .with("AttachmentCount", attachments)
        .with("PermissionsBoundaryUsageCount", 0_i64)
        .with("IsAttachable", Doc::Bool(true))
        .with_opt("Description", p.description.as_deref())
        .with("CreateDate", ts(p.created))
        .with("UpdateDate", ts(p.updated))
}

/// An AWS managed policy as a [`ManagedPolicy`] (stable id from its name).
fn aws_policy(path: &str, name: &str, document: &str) -> ManagedPolicy {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(name.as_bytes());
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    // 2015-02-06, when AWS created most of these.
    let created = 1_423_180_800;
    ManagedPolicy {
        name: name.to_string(),
        id: format!("ANPA{tail}"),
        path: path.to_string(),
        arn: managed::aws_managed_arn(path, name),
        created,
        updated: created,
        description: None,
        default_version: "v1".into(),
        versions: vec![PolicyVersion {
            id: "v1".into(),
            document: document.to_string(),
            created,
        }],
        next_version: 2,
    }
}

/// A managed policy visible to `acct`, by ARN.
fn find_policy(iam: &Iam, acct: &str, arn: &str) -> Result<(ManagedPolicy, i64), ServiceError> {
    let data = iam.data.read();
    let a = data.accounts.get(acct);
    let policy = match managed::find(arn) {
        Some((path, name, doc)) => Some(aws_policy(path, name, doc)),
        None => a.and_then(|a| a.policies.get(arn).cloned()),
    };
    policy
        .map(|p| (p, attachment_count(a, arn)))
        .ok_or_else(|| no_such(format!("Policy {arn} was not found.")))
}

fn check_managed_document(text: &str) -> Result<(), ServiceError> {
    if compact_len(text) > 6144 {
        return Err(limit("Cannot exceed quota for PolicySize: 6144"));
    }
    parse_document(text, PolicyKind::Identity)
}

fn create_policy(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let name = required(input, "PolicyName", "policyName")?;
    check_name(name, "policyName", 128)?;
    let path = path_of(input)?;
    let text = required(input, "PolicyDocument", "policyDocument")?;
    check_managed_document(text)?;
    let now = now_secs();
    let arn = format!("arn:aws:iam::{acct}:policy{path}{name}");
    let policy = ManagedPolicy {
        name: name.to_string(),
        id: new_id("ANPA"),
        path,
        arn: arn.clone(),
        created: now,
        updated: now,
        description: input
            .get("Description")
            .and_then(Doc::as_str)
            .map(str::to_string),
        default_version: "v1".into(),
        versions: vec![PolicyVersion {
            id: "v1".into(),
            document: text.to_string(),
            created: now,
        }],
        next_version: 2,
    };
    let doc = describe_policy(&policy, 0);
    iam.change(|data| {
        let a = account(data, acct);
        if a.policies.values().any(|p| p.name == name) {
            return Err(already_exists(format!(
                "A policy called {name} already exists. Duplicate names are not allowed."
            )));
        }
        a.policies.insert(arn, policy);
        Ok(())
    })?;
    Ok(Doc::map().with("Policy", doc))
}

fn get_policy(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let arn = required(input, "PolicyArn", "policyArn")?;
    let (policy, count) = find_policy(iam, acct, arn)?;
    Ok(Doc::map().with("Policy", describe_policy(&policy, count)))
}

fn delete_policy(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let arn = required(input, "PolicyArn", "policyArn")?.to_string();
    iam.change(|data| {
        let a = account(data, acct);
        if !a.policies.contains_key(&arn) {
            return Err(no_such(format!("Policy {arn} was not found.")));
        }
        if attachment_count(Some(a), &arn) > 0 {
            return Err(conflict("Cannot delete a policy attached to entities."));
        }
        a.policies.remove(&arn);
        Ok(Doc::map())
    })
}

fn list_policies(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let scope = input.get("Scope").and_then(Doc::as_str).unwrap_or("All");
    let only_attached = input
        .get("OnlyAttached")
        .and_then(Doc::as_bool)
        .unwrap_or(false);
    let prefix = input.get("PathPrefix").and_then(Doc::as_str).unwrap_or("/");
    let data = iam.data.read();
    let a = data.accounts.get(acct);
    let mut policies: Vec<ManagedPolicy> = Vec::new();
    if scope != "Local" {
        policies.extend(AWS_MANAGED.iter().map(|(p, n, d)| aws_policy(p, n, d)));
    }
    if scope != "AWS" {
        policies.extend(
            a.map(|a| a.policies.values().cloned().collect::<Vec<_>>())
                .unwrap_or_default(),
        );
    }
    let items = policies
        .iter()
        .filter(|p| p.path.starts_with(prefix))
        .map(|p| (p, attachment_count(a, &p.arn)))
        .filter(|(_, n)| !only_attached || *n > 0)
        .map(|(p, n)| describe_policy(p, n))
        .collect();
    Ok(page(items, input, "Policies"))
}

fn describe_version(v: &PolicyVersion, default: &str, with_document: bool) -> Doc {
    let doc = Doc::map();
    let doc = if with_document {
        doc.with("Document", encode_document(&v.document))
    } else {
        doc
    };
    doc.with("VersionId", v.id.as_str())
        .with("IsDefaultVersion", Doc::Bool(v.id == default))
        .with("CreateDate", ts(v.created))
}

fn customer_policy<'a>(
    data: &'a mut IamData,
    acct: &str,
    arn: &str,
) -> Result<&'a mut ManagedPolicy, ServiceError> {
    if managed::find(arn).is_some() {
        return Err(err(
            "AccessDenied",
            403,
            "An AWS managed policy cannot be changed.",
        ));
    }
    account(data, acct)
        .policies
        .get_mut(arn)
        .ok_or_else(|| no_such(format!("Policy {arn} was not found.")))
}

fn create_policy_version(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let arn = required(input, "PolicyArn", "policyArn")?;
    let text = required(input, "PolicyDocument", "policyDocument")?;
    check_managed_document(text)?;
    let set_default = input
        .get("SetAsDefault")
        .and_then(Doc::as_bool)
        .unwrap_or(false);
    iam.change(|data| {
        let p = customer_policy(data, acct, arn)?;
        if p.versions.len() >= 5 {
            return Err(limit("A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version."));
        }
        let now = now_secs();
        let version = PolicyVersion {
            id: format!("v{}", p.next_version),
            document: text.to_string(),
            created: now,
        };
        p.next_version += 1;
        if set_default {
            p.default_version = version.id.clone();
        }
        p.updated = now;
        let doc = describe_version(&version, &p.default_version, false);
        p.versions.push(version);
        Ok(Doc::map().with("PolicyVersion", doc))
    })
}

fn get_policy_version(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let arn = required(input, "PolicyArn", "policyArn")?;
    let id = required(input, "VersionId", "versionId")?;
    let (policy, _) = find_policy(iam, acct, arn)?;
    policy
        .versions
        .iter()
        .find(|v| v.id == id)
        .map(|v| {
            Doc::map().with(
                "PolicyVersion",
                describe_version(v, &policy.default_version, true),
            )
        })
        .ok_or_else(|| {
            no_such(format!(
                "Policy {arn} version {id} does not exist or is not attachable."
            ))
        })
}

fn list_policy_versions(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let arn = required(input, "PolicyArn", "policyArn")?;
    let (policy, _) = find_policy(iam, acct, arn)?;
    let items = policy
        .versions
        .iter()
        .rev()
        .map(|v| describe_version(v, &policy.default_version, false))
        .collect();
    Ok(page(items, input, "Versions"))
}

fn delete_policy_version(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let arn = required(input, "PolicyArn", "policyArn")?;
    let id = required(input, "VersionId", "versionId")?;
    iam.change(|data| {
        let p = customer_policy(data, acct, arn)?;
        if p.default_version == id {
            return Err(conflict("Cannot delete the default version of a policy."));
        }
        let before = p.versions.len();
        p.versions.retain(|v| v.id != id);
        if p.versions.len() == before {
            return Err(no_such(format!(
                "Policy {arn} version {id} does not exist or is not deletable."
            )));
        }
        Ok(Doc::map())
    })
}

fn set_default_version(iam: &Iam, acct: &str, input: &Doc) -> OpResult {
    let arn = required(input, "PolicyArn", "policyArn")?;
    let id = required(input, "VersionId", "versionId")?;
    iam.change(|data| {
        let p = customer_policy(data, acct, arn)?;
        if !p.versions.iter().any(|v| v.id == id) {
            return Err(no_such(format!(
                "Policy {arn} version {id} does not exist or is not attachable."
            )));
        }
        p.default_version = id.to_string();
        p.updated = now_secs();
        Ok(Doc::map())
    })
}

/// The user an access-key operation is about: `UserName`, else the caller.
fn key_user(iam: &Iam, caller: &IamCaller<'_>, input: &Doc) -> Result<String, ServiceError> {
    match input.get("UserName").and_then(Doc::as_str) {
        Some(name) => Ok(name.to_string()),
        None => iam.caller_user(caller).ok_or_else(|| {
            validation("Must specify userName when calling with non-User credentials")
        }),
    }
}

fn describe_key(k: &UserKey) -> Doc {
    Doc::map()
        .with("UserName", k.user.as_str())
        .with("AccessKeyId", k.id.as_str())
        .with("Status", if k.active { "Active" } else { "Inactive" })
        .with("CreateDate", ts(k.created))
}

fn create_access_key(iam: &Iam, caller: &IamCaller<'_>, input: &Doc) -> OpResult {
    let user = key_user(iam, caller, input)?;
    let key = UserKey {
        id: new_id("AKIA").chars().take(20).collect(),
        secret: new_secret(40),
        user: user.clone(),
        active: true,
        created: now_secs(),
    };
    let doc = describe_key(&key).with("SecretAccessKey", key.secret.as_str());
    iam.change(|data| {
        let a = account(data, caller.account);
        if !a.users.contains_key(&user) {
            return Err(Kind::User.not_found(&user));
        }
        if a.access_keys.values().filter(|k| k.user == user).count() >= 2 {
            return Err(limit("Cannot exceed quota for AccessKeysPerUser: 2"));
        }
        a.access_keys.insert(key.id.clone(), key);
        Ok(())
    })?;
    Ok(Doc::map().with("AccessKey", doc))
}

fn list_access_keys(iam: &Iam, caller: &IamCaller<'_>, input: &Doc) -> OpResult {
    let user = key_user(iam, caller, input)?;
    with_entity(iam, caller.account, Kind::User, &user, |a, _| {
        let keys = a
            .access_keys
            .values()
            .filter(|k| k.user == user)
            .map(describe_key)
            .collect();
        page(keys, input, "AccessKeyMetadata")
    })
}

fn delete_access_key(iam: &Iam, caller: &IamCaller<'_>, input: &Doc) -> OpResult {
    let id = required(input, "AccessKeyId", "accessKeyId")?.to_string();
    iam.change(|data| {
        let a = account(data, caller.account);
        match a.access_keys.get(&id) {
            Some(_) => {
                a.access_keys.remove(&id);
                Ok(Doc::map())
            }
            None => Err(no_such(format!(
                "The Access Key with id {id} cannot be found"
            ))),
        }
    })
}

fn update_access_key(iam: &Iam, caller: &IamCaller<'_>, input: &Doc) -> OpResult {
    let id = required(input, "AccessKeyId", "accessKeyId")?.to_string();
    let active = match required(input, "Status", "status")? {
        "Active" => true,
        "Inactive" => false,
        _ => {
            return Err(validation(
                "1 validation error detected: Value at 'status' failed to satisfy constraint: Member must satisfy enum value set",
            ))
        }
    };
    iam.change(|data| {
        let key = account(data, caller.account)
            .access_keys
            .get_mut(&id)
            .ok_or_else(|| no_such(format!("The Access Key with id {id} cannot be found")))?;
        key.active = active;
        Ok(Doc::map())
    })
}

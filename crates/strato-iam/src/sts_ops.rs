//! STS: who am I, and temporary credentials (`ASIA...` keys with a session
//! token and an end) for a role or for the caller.

use strato_model::wire::{Doc, OpResult, ServiceError};

use crate::data::{Session, SessionKind};
use crate::iam_ops::{new_id, new_secret};
use crate::policy::{PolicyDocument, PolicyKind, RequestContext, RequestPrincipal};
use crate::{now_secs, parse_role_arn, Iam, IamCaller};

fn err(code: &'static str, status: u16, message: impl Into<String>) -> ServiceError {
    ServiceError {
        status,
        ..ServiceError::new(code, message)
    }
}

fn validation(message: impl Into<String>) -> ServiceError {
    err("ValidationError", 400, message)
}

fn secs_doc(secs: i64) -> Doc {
    // Epoch seconds fit an f64 exactly.
    #[allow(clippy::cast_precision_loss)]
    Doc::Timestamp(secs as f64)
}

pub(crate) fn operation(iam: &Iam, caller: &IamCaller<'_>, action: &str, input: &Doc) -> OpResult {
    match action {
        "GetCallerIdentity" => {
            let (user_id, arn) = iam.identity_of(caller);
            Ok(Doc::map()
                .with("UserId", user_id)
                .with("Account", caller.account)
                .with("Arn", arn))
        }
        "AssumeRole" => assume_role(iam, caller, input),
        "GetSessionToken" => get_session_token(iam, caller, input),
        _ => Err(err(
            "InvalidAction",
            400,
            format!("Could not find operation {action} for version 2011-06-15"),
        )),
    }
}

fn duration(input: &Doc, default: i64, max: i64, max_message: &str) -> Result<i64, ServiceError> {
    let value = input
        .get("DurationSeconds")
        .and_then(Doc::as_i64)
        .unwrap_or(default);
    if value < 900 {
        return Err(validation(format!(
            "1 validation error detected: Value '{value}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
        )));
    }
    if value > max {
        return Err(validation(max_message.to_string()));
    }
    Ok(value)
}

fn credentials(session_id: &str, session: &Session) -> Doc {
    Doc::map()
        .with("AccessKeyId", session_id)
        .with("SecretAccessKey", session.secret.as_str())
        .with("SessionToken", session.token.as_str())
        .with("Expiration", secs_doc(session.expires))
}

fn store_session(iam: &Iam, session: Session) -> Result<String, ServiceError> {
    let id: String = new_id("ASIA").chars().take(20).collect();
    let stored_id = id.clone();
    iam.change(move |data| {
        let now = now_secs();
        data.sessions.retain(|_, s| s.expires + 3600 >= now);
        data.sessions.insert(stored_id, session);
        Ok(())
    })?;
    Ok(id)
}

pub(crate) fn new_token() -> String {
    format!("IQoJb3JpZ2luX2Vj{}", new_secret(280))
}

fn assume_role(iam: &Iam, caller: &IamCaller<'_>, input: &Doc) -> OpResult {
    let role_arn = input
        .get("RoleArn")
        .and_then(Doc::as_str)
        .ok_or_else(|| validation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"))?;
    let session_name = input
        .get("RoleSessionName")
        .and_then(Doc::as_str)
        .ok_or_else(|| validation("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"))?;
    if !session_name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return Err(validation(format!(
            "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    if !(2..=64).contains(&session_name.len()) {
        return Err(validation(format!(
            "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must have length {} {}",
            if session_name.len() < 2 { "greater than or equal to" } else { "less than or equal to" },
            if session_name.len() < 2 { 2 } else { 64 }
        )));
    }
    let Some((role_account, role_name)) = parse_role_arn(role_arn) else {
        return Err(validation(format!("{role_arn} is invalid")));
    };
    let session_policy = match input.get("Policy").and_then(Doc::as_str) {
        Some(text) => {
            if text.len() > 2048 {
                return Err(err(
                    "PackedPolicyTooLarge",
                    400,
                    "Packed policy consumes more than 100% of allotted space. Please use smaller policy for session.",
                ));
            }
            PolicyDocument::parse(text, PolicyKind::Identity)
                .map_err(|e| err("MalformedPolicyDocument", 400, e.0))?;
            Some(text.to_string())
        }
        None => None,
    };
    let (_, caller_arn) = iam.identity_of(caller);
    let denied = || {
        err(
            "AccessDenied",
            403,
            format!("User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"),
        )
    };
    let (role_id, trust, max) = {
        let data = iam.data.read();
        let role = data
            .accounts
            .get(role_account)
            .and_then(|a| a.roles.get(role_name))
            .filter(|r| r.arn == role_arn)
            .ok_or_else(denied)?;
        (
            role.id.clone(),
            role.trust.clone().unwrap_or_default(),
            role.max_session_duration.unwrap_or(3600),
        )
    };
    let seconds = duration(
        input,
        3600,
        max,
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    )?;
    let trust = PolicyDocument::parse(&trust, PolicyKind::Trust).map_err(|_| denied())?;
    let cross_account = caller.account != role_account;
    // The trust policy must let the caller in; where identity policies
    // are enforced the one evaluator decides with the trust policy as the
    // role's resource policy (cross-account needs both sides).
    let role_of_caller = iam
        .role_keys
        .get(caller.access_key_id)
        .map(|k| format!("arn:aws:iam::{}:role/{}", k.account, k.role_name));
    let principal = RequestPrincipal::Aws {
        arn: caller_arn.clone(),
        account: caller.account.to_string(),
        role_arn: role_of_caller,
    };
    let context = RequestContext::new().with("aws:PrincipalArn", caller_arn.as_str());
    let verdict = trust.evaluate(&crate::policy::Request {
        action: "sts:AssumeRole",
        resource: role_arn,
        principal: &principal,
        context: &context,
    });
    let mut trusted = verdict.allowed && !verdict.denied;
    if trusted && iam.enforce {
        if let Some(grants) = iam.grants_for(caller.access_key_id) {
            trusted = iam
                .decide_for(
                    &grants,
                    "sts:AssumeRole",
                    role_arn,
                    RequestContext::new(),
                    Some((Some(&trust), cross_account)),
                )
                .is_ok();
        }
    }
    if !trusted {
        return Err(denied());
    }
    let session = Session {
        secret: new_secret(40),
        token: new_token(),
        account: role_account.to_string(),
        expires: now_secs() + seconds,
        kind: SessionKind::AssumedRole {
            role_name: role_name.to_string(),
            role_id: role_id.clone(),
            session_name: session_name.to_string(),
        },
        policy: session_policy.clone(),
    };
    let creds_session = session.clone();
    let id = store_session(iam, session)?;
    let mut out = Doc::map()
        .with("Credentials", credentials(&id, &creds_session))
        .with(
            "AssumedRoleUser",
            Doc::map()
                .with("AssumedRoleId", format!("{role_id}:{session_name}"))
                .with(
                    "Arn",
                    format!("arn:aws:sts::{role_account}:assumed-role/{role_name}/{session_name}"),
                ),
        );
    if let Some(policy) = session_policy {
        let percent = (policy.len() * 100).div_ceil(2048);
        out = out.with("PackedPolicySize", i64::try_from(percent).unwrap_or(100));
    }
    Ok(out)
}

fn get_session_token(iam: &Iam, caller: &IamCaller<'_>, input: &Doc) -> OpResult {
    if iam.data.read().sessions.contains_key(caller.access_key_id)
        || iam.role_keys.contains_key(caller.access_key_id)
    {
        return Err(err(
            "AccessDenied",
            403,
            "Cannot call GetSessionToken with session credentials",
        ));
    }
    let user = iam.caller_user(caller);
    let (max, message) = if user.is_some() {
        (
            129_600,
            "The requested DurationSeconds exceeds the 1 hour session limit for roles.",
        )
    } else {
        (3600, "Root sessions are limited to 1 hour.")
    };
    let seconds = duration(
        input,
        if user.is_some() { 43_200 } else { 3600 },
        max,
        message,
    )?;
    let session = Session {
        secret: new_secret(40),
        token: new_token(),
        account: caller.account.to_string(),
        expires: now_secs() + seconds,
        kind: SessionKind::User { user },
        policy: None,
    };
    let creds_session = session.clone();
    let id = store_session(iam, session)?;
    Ok(Doc::map().with("Credentials", credentials(&id, &creds_session)))
}

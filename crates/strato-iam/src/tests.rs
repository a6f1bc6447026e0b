//! IAM and STS operations and the authorizer, end to end without HTTP.

use strato_model::wire::Doc;

use super::*;

const ACCT: &str = "111111111111";
const ROOT: IamCaller<'static> = IamCaller {
    account: ACCT,
    access_key_id: "AKIAROOT",
};
const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn call(iam: &Iam, caller: &IamCaller<'_>, action: &str, pairs: &[(&str, &str)]) -> OpResult {
    let mut doc = Doc::map();
    for (k, v) in pairs {
        doc = doc.with(k, Doc::Form(v.to_string()));
    }
    if action.starts_with("GetCaller") || action == "AssumeRole" || action == "GetSessionToken" {
        iam.sts_operation(caller, action, &doc)
    } else {
        iam.iam_operation(caller, action, &doc)
    }
}

fn text(doc: &Doc, path: &[&str]) -> String {
    let mut d = doc;
    for p in path {
        d = d.get(p).unwrap();
    }
    d.as_str().unwrap().to_string()
}

fn user_with_key(iam: &Iam, name: &str, policy: &str) -> String {
    call(iam, &ROOT, "CreateUser", &[("UserName", name)]).unwrap();
    call(
        iam,
        &ROOT,
        "PutUserPolicy",
        &[
            ("UserName", name),
            ("PolicyName", "p"),
            ("PolicyDocument", policy),
        ],
    )
    .unwrap();
    let key = call(iam, &ROOT, "CreateAccessKey", &[("UserName", name)]).unwrap();
    text(&key, &["AccessKey", "AccessKeyId"])
}

const FN_A: &str = "arn:aws:lambda:us-east-1:111111111111:function:a";
const FN_B: &str = "arn:aws:lambda:us-east-1:111111111111:function:b";

#[test]
fn a_user_limited_to_one_function_invokes_it_and_not_another() {
    let iam = Iam::in_memory(true);
    let key = user_with_key(
        &iam,
        "bob",
        &format!(
            r#"{{"Statement":{{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"{FN_A}"}}}}"#
        ),
    );
    assert_eq!(
        iam.authorize(&key, "lambda:InvokeFunction", FN_A, RequestContext::new()),
        Ok(())
    );
    let denied = iam
        .authorize(&key, "lambda:InvokeFunction", FN_B, RequestContext::new())
        .unwrap_err();
    assert_eq!(
        denied.message,
        format!("User: arn:aws:iam::111111111111:user/bob is not authorized to perform: lambda:InvokeFunction on resource: {FN_B} because no identity-based policy allows the lambda:InvokeFunction action")
    );
    // Root keys and unknown keys are the account's root.
    assert_eq!(
        iam.authorize(
            "AKIAROOT",
            "lambda:InvokeFunction",
            FN_B,
            RequestContext::new()
        ),
        Ok(())
    );
}

#[test]
fn open_mode_allows_every_key() {
    let iam = Iam::in_memory(false);
    let key = user_with_key(
        &iam,
        "bob",
        r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}"#,
    );
    assert_eq!(
        iam.authorize(&key, "lambda:InvokeFunction", FN_B, RequestContext::new()),
        Ok(())
    );
}

#[test]
fn policy_changes_reach_the_cached_decision() {
    let iam = Iam::in_memory(true);
    let key = user_with_key(
        &iam,
        "bob",
        r#"{"Statement":{"Effect":"Allow","Action":"sqs:*","Resource":"*"}}"#,
    );
    assert!(iam
        .authorize(&key, "lambda:ListFunctions", "*", RequestContext::new())
        .is_err());
    call(
        &iam,
        &ROOT,
        "AttachUserPolicy",
        &[
            ("UserName", "bob"),
            (
                "PolicyArn",
                "arn:aws:iam::aws:policy/AWSLambda_ReadOnlyAccess",
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        iam.authorize(&key, "lambda:ListFunctions", "*", RequestContext::new()),
        Ok(())
    );
    call(&iam, &ROOT, "CreateGroup", &[("GroupName", "no-lambda")]).unwrap();
    call(
        &iam,
        &ROOT,
        "PutGroupPolicy",
        &[
            ("GroupName", "no-lambda"),
            ("PolicyName", "d"),
            (
                "PolicyDocument",
                r#"{"Statement":{"Effect":"Deny","Action":"lambda:*","Resource":"*"}}"#,
            ),
        ],
    )
    .unwrap();
    call(
        &iam,
        &ROOT,
        "AddUserToGroup",
        &[("GroupName", "no-lambda"), ("UserName", "bob")],
    )
    .unwrap();
    let denied = iam
        .authorize(&key, "lambda:ListFunctions", "*", RequestContext::new())
        .unwrap_err();
    assert!(
        denied
            .message
            .ends_with("with an explicit deny in an identity-based policy"),
        "{}",
        denied.message
    );
}

#[test]
fn assume_role_follows_the_trust_policy() {
    let iam = Iam::in_memory(true);
    let bob = user_with_key(
        &iam,
        "bob",
        r#"{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}}"#,
    );
    let bob_caller = IamCaller {
        account: ACCT,
        access_key_id: &bob,
    };
    call(
        &iam,
        &ROOT,
        "CreateRole",
        &[
            ("RoleName", "fn"),
            ("AssumeRolePolicyDocument", LAMBDA_TRUST),
        ],
    )
    .unwrap();
    let trust_bob = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:user/bob"},"Action":"sts:AssumeRole"}}"#;
    call(
        &iam,
        &ROOT,
        "CreateRole",
        &[("RoleName", "ops"), ("AssumeRolePolicyDocument", trust_bob)],
    )
    .unwrap();
    call(
        &iam,
        &ROOT,
        "AttachRolePolicy",
        &[
            ("RoleName", "ops"),
            ("PolicyArn", "arn:aws:iam::aws:policy/AmazonSQSFullAccess"),
        ],
    )
    .unwrap();

    let refused = call(
        &iam,
        &bob_caller,
        "AssumeRole",
        &[
            ("RoleArn", "arn:aws:iam::111111111111:role/fn"),
            ("RoleSessionName", "s1"),
        ],
    )
    .unwrap_err();
    assert_eq!(refused.code, "AccessDenied");
    assert_eq!(refused.message, "User: arn:aws:iam::111111111111:user/bob is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111111111111:role/fn");

    let assumed = call(
        &iam,
        &bob_caller,
        "AssumeRole",
        &[
            ("RoleArn", "arn:aws:iam::111111111111:role/ops"),
            ("RoleSessionName", "s1"),
        ],
    )
    .unwrap();
    let key = text(&assumed, &["Credentials", "AccessKeyId"]);
    assert!(key.starts_with("ASIA") && key.len() == 20);
    let entry = iam.lookup_key(&key).unwrap();
    assert_eq!(
        entry.token.as_deref(),
        Some(text(&assumed, &["Credentials", "SessionToken"]).as_str())
    );
    let session = IamCaller {
        account: ACCT,
        access_key_id: &key,
    };
    let me = call(&iam, &session, "GetCallerIdentity", &[]).unwrap();
    assert_eq!(
        text(&me, &["Arn"]),
        "arn:aws:sts::111111111111:assumed-role/ops/s1"
    );
    assert_eq!(
        iam.authorize(
            &key,
            "sqs:SendMessage",
            "arn:aws:sqs:us-east-1:111111111111:q",
            RequestContext::new()
        ),
        Ok(())
    );
    assert!(iam
        .authorize(&key, "lambda:InvokeFunction", FN_A, RequestContext::new())
        .is_err());
}

#[test]
fn lambda_may_assume_only_roles_that_trust_it() {
    let iam = Iam::in_memory(true);
    call(
        &iam,
        &ROOT,
        "CreateRole",
        &[
            ("RoleName", "fn"),
            ("AssumeRolePolicyDocument", LAMBDA_TRUST),
        ],
    )
    .unwrap();
    let ec2 = LAMBDA_TRUST.replace("lambda", "ec2");
    call(
        &iam,
        &ROOT,
        "CreateRole",
        &[("RoleName", "ec2"), ("AssumeRolePolicyDocument", &ec2)],
    )
    .unwrap();
    assert!(iam.lambda_can_assume("arn:aws:iam::111111111111:role/fn"));
    assert!(!iam.lambda_can_assume("arn:aws:iam::111111111111:role/ec2"));
    assert!(!iam.lambda_can_assume("arn:aws:iam::111111111111:role/missing"));
}

#[test]
fn function_keys_act_with_the_execution_role() {
    let iam = Iam::in_memory(true);
    call(
        &iam,
        &ROOT,
        "CreateRole",
        &[
            ("RoleName", "fn"),
            ("AssumeRolePolicyDocument", LAMBDA_TRUST),
        ],
    )
    .unwrap();
    call(
        &iam,
        &ROOT,
        "PutRolePolicy",
        &[
            ("RoleName", "fn"),
            ("PolicyName", "logs"),
            (
                "PolicyDocument",
                r#"{"Statement":{"Effect":"Allow","Action":"logs:*","Resource":"*"}}"#,
            ),
        ],
    )
    .unwrap();
    let session = iam.issue_function_session(
        "111111111111",
        "arn:aws:iam::111111111111:role/fn",
        "my-fn",
        900,
    );
    let key = session.access_key_id.as_str();
    assert!(key.starts_with("ASIA") && key.len() == 20, "{key}");
    assert_eq!(session.secret_access_key.len(), 40);
    // Short-lived: the token is required, and the session ends.
    assert_eq!(iam.check_session(key, Some(&session.session_token)), Ok(()));
    assert_eq!(
        iam.check_session(key, None),
        Err(SessionRefusal::InvalidToken)
    );
    let entry = iam.lookup_key(key).unwrap();
    assert_eq!(entry.account, "111111111111");
    assert!((899..=901).contains(&(entry.expires.unwrap() - now_secs())));
    let ended = iam.issue_function_session(
        "111111111111",
        "arn:aws:iam::111111111111:role/fn",
        "my-fn",
        900,
    );
    assert_ne!(ended.access_key_id, session.access_key_id);
    if let Some(mut k) = iam.role_keys.get_mut(&ended.access_key_id) {
        k.key.expires = Some(now_secs() - 1);
    }
    assert_eq!(
        iam.check_session(&ended.access_key_id, Some(&ended.session_token)),
        Err(SessionRefusal::Expired)
    );
    assert_eq!(
        iam.authorize(key, "logs:PutLogEvents", "*", RequestContext::new()),
        Ok(())
    );
    let denied = iam
        .authorize(key, "lambda:ListFunctions", "*", RequestContext::new())
        .unwrap_err();
    assert!(
        denied
            .message
            .starts_with("User: arn:aws:sts::111111111111:assumed-role/fn/my-fn is not authorized"),
        "{}",
        denied.message
    );
}

#[test]
fn iam_errors_are_aws_words() {
    let iam = Iam::in_memory(true);
    let e = call(&iam, &ROOT, "GetUser", &[("UserName", "non-existent-user")]).unwrap_err();
    assert_eq!(
        (e.code, e.status, e.message.as_str()),
        (
            "NoSuchEntity",
            404,
            "The user with name non-existent-user cannot be found."
        )
    );
    let e = call(
        &iam,
        &ROOT,
        "PutRolePolicy",
        &[
            ("RoleName", "x"),
            ("PolicyName", "p"),
            ("PolicyDocument", "{"),
        ],
    )
    .unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            "MalformedPolicyDocument",
            "This policy contains invalid Json"
        )
    );
    let e = call(
        &iam,
        &ROOT,
        "GetPolicy",
        &[(
            "PolicyArn",
            "arn:aws:iam::111111111111:policy/non-existent-policy",
        )],
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "Policy arn:aws:iam::111111111111:policy/non-existent-policy was not found."
    );
    call(
        &iam,
        &ROOT,
        "CreateRole",
        &[
            ("RoleName", "r"),
            ("AssumeRolePolicyDocument", LAMBDA_TRUST),
        ],
    )
    .unwrap();
    let e = call(
        &iam,
        &ROOT,
        "CreateRole",
        &[
            ("RoleName", "R"),
            ("AssumeRolePolicyDocument", LAMBDA_TRUST),
        ],
    )
    .unwrap_err();
    assert_eq!((e.code, e.status), ("EntityAlreadyExists", 409));
    call(
        &iam,
        &ROOT,
        "AttachRolePolicy",
        &[
            ("RoleName", "r"),
            (
                "PolicyArn",
                "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            ),
        ],
    )
    .unwrap();
    let e = call(&iam, &ROOT, "DeleteRole", &[("RoleName", "r")]).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            "DeleteConflict",
            "Cannot delete entity, must detach all policies first."
        )
    );
    let e = call(
        &iam,
        &ROOT,
        "AttachRolePolicy",
        &[("RoleName", "r"), ("PolicyArn", "not-an-arn")],
    )
    .unwrap_err();
    assert_eq!(e.message, "Invalid ARN:  Could not be parsed!");
}

#[test]
fn state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iam.json");
    {
        let iam = Iam::open(&path, true).unwrap();
        call(
            &iam,
            &ROOT,
            "CreateRole",
            &[
                ("RoleName", "fn"),
                ("AssumeRolePolicyDocument", LAMBDA_TRUST),
            ],
        )
        .unwrap();
    }
    let iam = Iam::open(&path, true).unwrap();
    assert!(iam.lambda_can_assume("arn:aws:iam::111111111111:role/fn"));
}

#[test]
fn session_credentials_need_their_token_and_expire() {
    let iam = Iam::in_memory(true);
    let token = call(
        &iam,
        &ROOT,
        "GetSessionToken",
        &[("DurationSeconds", "900")],
    )
    .unwrap();
    let key = text(&token, &["Credentials", "AccessKeyId"]);
    let secret_token = text(&token, &["Credentials", "SessionToken"]);
    assert_eq!(iam.check_session(&key, Some(&secret_token)), Ok(()));
    assert_eq!(
        iam.check_session(&key, None),
        Err(SessionRefusal::InvalidToken)
    );
    assert_eq!(
        iam.check_session(&key, Some("other")),
        Err(SessionRefusal::InvalidToken)
    );
    assert_eq!(iam.check_session("AKIAROOT", None), Ok(()));
    iam.change(|data| {
        if let Some(session) = data.sessions.get_mut(&key) {
            session.expires = now_secs() - 1;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        iam.check_session(&key, Some(&secret_token)),
        Err(SessionRefusal::Expired)
    );
    let e = call(
        &iam,
        &ROOT,
        "GetSessionToken",
        &[("DurationSeconds", "7200")],
    )
    .unwrap_err();
    assert_eq!(e.message, "Root sessions are limited to 1 hour.");
}

#[test]
fn resource_policies_decide_for_services_anonymous_callers_roles_and_roots() {
    let iam = Iam::in_memory(false);
    let policy = format!(
        r#"{{"Statement":[
            {{"Effect":"Allow","Principal":{{"Service":"s3.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"{FN_A}",
              "Condition":{{"ArnLike":{{"AWS:SourceArn":"arn:aws:s3:::inbox"}}}}}},
            {{"Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunctionUrl","Resource":"{FN_A}",
              "Condition":{{"StringEquals":{{"lambda:FunctionUrlAuthType":"NONE"}}}}}},
            {{"Effect":"Deny","Principal":"*","Action":"lambda:DeleteFunction","Resource":"{FN_A}"}}]}}"#
    );
    let access = |action| ResourceAccess {
        action,
        resource: FN_A,
        owner: ACCT,
        policy: Some(&policy),
    };
    let s3 = Accessor::Service("s3.amazonaws.com");
    let from = |bucket: &str| RequestContext::new().with("aws:SourceArn", bucket);
    assert_eq!(
        iam.authorize_as(
            &s3,
            &access("lambda:InvokeFunction"),
            from("arn:aws:s3:::inbox")
        ),
        Ok(())
    );
    let refused = iam
        .authorize_as(
            &s3,
            &access("lambda:InvokeFunction"),
            from("arn:aws:s3:::other"),
        )
        .unwrap_err();
    assert!(refused
        .message
        .ends_with("because no resource-based policy allows the lambda:InvokeFunction action"));
    let sns = Accessor::Service("sns.amazonaws.com");
    assert!(iam
        .authorize_as(
            &sns,
            &access("lambda:InvokeFunction"),
            from("arn:aws:s3:::inbox")
        )
        .is_err());
    // Anonymous callers are named only by `*`.
    let url = RequestContext::new().with("lambda:FunctionUrlAuthType", "NONE");
    assert_eq!(
        iam.authorize_as(
            &Accessor::Anonymous,
            &access("lambda:InvokeFunctionUrl"),
            url
        ),
        Ok(())
    );
    assert!(iam
        .authorize_as(
            &Accessor::Anonymous,
            &access("lambda:InvokeFunction"),
            RequestContext::new()
        )
        .is_err());
    // The owner's root is bound by the explicit deny, and by nothing else.
    let root = Accessor::Key {
        access_key_id: "AKIAROOT",
        account: ACCT,
    };
    assert_eq!(
        iam.authorize_as(&root, &access("lambda:GetFunction"), RequestContext::new()),
        Ok(())
    );
    assert_eq!(
        iam.authorize_as(&root, &access("lambda:DeleteFunction"), RequestContext::new())
            .unwrap_err()
            .message,
        format!("User: arn:aws:iam::{ACCT}:root is not authorized to perform: lambda:DeleteFunction on resource: {FN_A} with an explicit deny in a resource-based policy")
    );
    // A role session of the owner account (Scheduler) is in its own account;
    // another account's needs the policy to name it.
    let role = Accessor::Role {
        role_arn: "arn:aws:iam::111111111111:role/sched",
        session: "scheduler",
    };
    assert_eq!(
        iam.authorize_as(
            &role,
            &access("lambda:InvokeFunction"),
            RequestContext::new()
        ),
        Ok(())
    );
    let foreign = Accessor::Role {
        role_arn: "arn:aws:iam::222222222222:role/sched",
        session: "scheduler",
    };
    assert_eq!(
        iam.authorize_as(&foreign, &access("lambda:InvokeFunction"), RequestContext::new())
            .unwrap_err()
            .message,
        format!("User: arn:aws:sts::222222222222:assumed-role/sched/scheduler is not authorized to perform: lambda:InvokeFunction on resource: {FN_A} because no resource-based policy allows the lambda:InvokeFunction action")
    );
}

//! The evaluator as a case table: a policy, a request, the decision.

use std::sync::Arc;

use super::*;

fn user(name: &str) -> RequestPrincipal {
    RequestPrincipal::Aws {
        arn: format!("arn:aws:iam::111111111111:user/{name}"),
        account: "111111111111".into(),
        role_arn: None,
    }
}

fn identity(policy: serde_json::Value) -> Arc<PolicyDocument> {
    Arc::new(PolicyDocument::from_json(&policy, PolicyKind::Identity).unwrap())
}

fn check(
    policy: serde_json::Value,
    action: &str,
    resource: &str,
    ctx: &RequestContext,
) -> Result<(), Denial> {
    let docs = [identity(policy)];
    let principal = user("bob");
    decide(
        &PolicySet {
            identity: &docs,
            session: None,
            resource: None,
            cross_account: false,
        },
        &Request {
            action,
            resource,
            principal: &principal,
            context: ctx,
        },
    )
}

fn allow(action: serde_json::Value, resource: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]})
}

const FN_A: &str = "arn:aws:lambda:us-east-1:111111111111:function:a";
const FN_B: &str = "arn:aws:lambda:us-east-1:111111111111:function:b";

type Case<'a> = (
    &'a str,
    serde_json::Value,
    &'a str,
    &'a str,
    &'a RequestContext,
    Result<(), Denial>,
);

#[test]
fn evaluator_case_table() {
    use serde_json::json;
    let none = RequestContext::new();
    // The keys every service's connection gives.
    let ip = Connection {
        secure: false,
        source_ip: Some(std::net::IpAddr::from([10, 1, 2, 3])),
    }
    .context();
    let cases: Vec<Case> = vec![
        (
            "exact action and resource",
            allow(json!("lambda:InvokeFunction"), json!(FN_A)),
            "lambda:InvokeFunction",
            FN_A,
            &none,
            Ok(()),
        ),
        (
            "other resource is implicitly denied",
            allow(json!("lambda:InvokeFunction"), json!(FN_A)),
            "lambda:InvokeFunction",
            FN_B,
            &none,
            Err(Denial::NoIdentityAllow),
        ),
        (
            "action case-insensitive",
            allow(json!("LAMBDA:invokefunction"), json!("*")),
            "lambda:InvokeFunction",
            FN_A,
            &none,
            Ok(()),
        ),
        (
            "action wildcard",
            allow(json!("lambda:Invoke*"), json!("*")),
            "lambda:InvokeFunction",
            FN_A,
            &none,
            Ok(()),
        ),
        (
            "action wildcard misses",
            allow(json!("lambda:Get*"), json!("*")),
            "lambda:InvokeFunction",
            FN_A,
            &none,
            Err(Denial::NoIdentityAllow),
        ),
        (
            "question mark",
            allow(
                json!("*"),
                json!("arn:aws:lambda:*:111111111111:function:?"),
            ),
            "lambda:InvokeFunction",
            FN_B,
            &none,
            Ok(()),
        ),
        (
            "resource case-sensitive",
            allow(
                json!("*"),
                json!("arn:aws:lambda:us-east-1:111111111111:function:A"),
            ),
            "lambda:InvokeFunction",
            FN_A,
            &none,
            Err(Denial::NoIdentityAllow),
        ),
        (
            "not action",
            json!({"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}),
            "lambda:InvokeFunction",
            FN_A,
            &none,
            Ok(()),
        ),
        (
            "not action excludes",
            json!({"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}),
            "iam:CreateUser",
            "arn:aws:iam::111111111111:user/x",
            &none,
            Err(Denial::NoIdentityAllow),
        ),
        (
            "not resource",
            json!({"Statement": {"Effect": "Allow", "Action": "*", "NotResource": FN_A}}),
            "lambda:InvokeFunction",
            FN_B,
            &none,
            Ok(()),
        ),
        (
            "explicit deny wins",
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}, {"Effect": "Deny", "Action": "lambda:Delete*", "Resource": "*"}]}),
            "lambda:DeleteFunction",
            FN_A,
            &none,
            Err(Denial::ExplicitIdentity),
        ),
        (
            "deny of another action leaves allow",
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}, {"Effect": "Deny", "Action": "lambda:Delete*", "Resource": "*"}]}),
            "lambda:GetFunction",
            FN_A,
            &none,
            Ok(()),
        ),
        (
            "ip address in range",
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}}),
            "s3:GetObject",
            "arn:aws:s3:::b/k",
            &ip,
            Ok(()),
        ),
        (
            "ip address out of range",
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": ["192.168.0.0/16", "172.16.0.1"]}}}}),
            "s3:GetObject",
            "arn:aws:s3:::b/k",
            &ip,
            Err(Denial::NoIdentityAllow),
        ),
        (
            "not ip address",
            json!({"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}}),
            "s3:GetObject",
            "*",
            &ip,
            Err(Denial::NoIdentityAllow),
        ),
        (
            "bool secure transport deny",
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}, {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}),
            "sqs:SendMessage",
            "*",
            &ip,
            Err(Denial::ExplicitIdentity),
        ),
        (
            "missing key fails positive operator",
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceAccount": "111111111111"}}}}),
            "sqs:SendMessage",
            "*",
            &none,
            Err(Denial::NoIdentityAllow),
        ),
        (
            "missing key passes IfExists",
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEqualsIfExists": {"aws:SourceAccount": "111111111111"}}}}),
            "sqs:SendMessage",
            "*",
            &none,
            Ok(()),
        ),
        (
            "missing key passes negated operator",
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:SourceAccount": "222222222222"}}}}),
            "sqs:SendMessage",
            "*",
            &none,
            Ok(()),
        ),
        (
            "null true on missing key",
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Null": {"aws:SourceArn": "true"}}}}),
            "sqs:SendMessage",
            "*",
            &none,
            Ok(()),
        ),
        (
            "null false on missing key",
            json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Null": {"aws:SourceArn": "false"}}}}),
            "sqs:SendMessage",
            "*",
            &none,
            Err(Denial::NoIdentityAllow),
        ),
    ];
    for (name, policy, action, resource, ctx, want) in cases {
        assert_eq!(check(policy, action, resource, ctx), want, "{name}");
    }
}

#[test]
fn condition_operators() {
    use serde_json::json;
    let ctx = RequestContext::new()
        .with(
            "aws:SourceArn",
            "arn:aws:sns:us-east-1:111111111111:topic-1",
        )
        .with("aws:username", "bob")
        .with("aws:CurrentTime", "2026-12-07T00:00:00Z")
        .with("n", "5")
        .with("tags", "a")
        .with("tags", "b");
    let when = |cond: serde_json::Value| {
        check(json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": cond}}), "x:Y", "*", &ctx).is_ok()
    };
    assert!(when(
        json!({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:111111111111:topic-*"}})
    ));
    assert!(!when(
        json!({"ArnLike": {"aws:SourceArn": "arn:aws:sqs:*:111111111111:*"}})
    ));
    assert!(when(
        json!({"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:111111111111:topic-1"}})
    ));
    assert!(when(
        json!({"ArnNotLike": {"aws:SourceArn": "arn:aws:sqs:*"}})
    ));
    assert!(when(json!({"StringLike": {"aws:SourceArn": "*topic*"}})));
    assert!(!when(
        json!({"StringNotLike": {"aws:SourceArn": "*topic*"}})
    ));
    assert!(when(
        json!({"StringEqualsIgnoreCase": {"aws:username": "BOB"}})
    ));
    assert!(!when(json!({"StringEquals": {"aws:username": "BOB"}})));
    assert!(when(
        json!({"StringNotEqualsIgnoreCase": {"aws:username": "alice"}})
    ));
    assert!(when(json!({"NumericLessThan": {"n": "6"}})));
    assert!(!when(json!({"NumericLessThan": {"n": 5}})));
    assert!(when(json!({"NumericLessThanEquals": {"n": 5}})));
    assert!(when(json!({"NumericGreaterThanEquals": {"n": "5"}})));
    assert!(when(json!({"NumericNotEquals": {"n": "4"}})));
    assert!(when(
        json!({"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}})
    ));
    assert!(!when(
        json!({"DateGreaterThan": {"aws:CurrentTime": "2027-01-01"}})
    ));
    assert!(when(
        json!({"ForAnyValue:StringEquals": {"tags": ["b", "c"]}})
    ));
    assert!(!when(
        json!({"ForAllValues:StringEquals": {"tags": ["b", "c"]}})
    ));
    assert!(when(
        json!({"ForAllValues:StringEquals": {"tags": ["a", "b", "c"]}})
    ));
    assert!(when(
        json!({"ForAllValues:StringEquals": {"absent": ["a"]}})
    ));
    assert!(!when(
        json!({"ForAnyValue:StringEquals": {"absent": ["a"]}})
    ));
    assert!(when(
        json!({"StringEquals": {"aws:username": "${aws:username}"}})
    ));
    // Every key of a block and every block must hold.
    assert!(!when(
        json!({"StringEquals": {"aws:username": "bob", "n": "6"}})
    ));
    assert!(!when(
        json!({"StringEquals": {"aws:username": "bob"}, "NumericEquals": {"n": 6}})
    ));
}

#[test]
fn policy_variables_in_resources() {
    let ctx = RequestContext::new().with("aws:username", "bob");
    let policy = allow(
        serde_json::json!("s3:*"),
        serde_json::json!("arn:aws:s3:::home/${aws:username}/*"),
    );
    assert_eq!(
        check(
            policy.clone(),
            "s3:GetObject",
            "arn:aws:s3:::home/bob/x",
            &ctx
        ),
        Ok(())
    );
    assert!(check(
        policy.clone(),
        "s3:GetObject",
        "arn:aws:s3:::home/eve/x",
        &ctx
    )
    .is_err());
    assert!(check(
        policy,
        "s3:GetObject",
        "arn:aws:s3:::home/bob/x",
        &RequestContext::new()
    )
    .is_err());
}

#[test]
fn trust_policies_match_services_roles_and_accounts() {
    let trust = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com","AWS":["222222222222","arn:aws:iam::111111111111:role/r"]},"Action":"sts:AssumeRole"}]}"#,
        PolicyKind::Trust,
    )
    .unwrap();
    let ctx = RequestContext::new();
    let verdict = |p: &RequestPrincipal| {
        trust
            .evaluate(&Request {
                action: "sts:AssumeRole",
                resource: "arn:aws:iam::111111111111:role/x",
                principal: p,
                context: &ctx,
            })
            .allowed
    };
    assert!(verdict(&RequestPrincipal::Service(
        "lambda.amazonaws.com".into()
    )));
    assert!(!verdict(&RequestPrincipal::Service(
        "sns.amazonaws.com".into()
    )));
    assert!(verdict(&RequestPrincipal::Aws {
        arn: "arn:aws:iam::222222222222:user/x".into(),
        account: "222222222222".into(),
        role_arn: None
    }));
    assert!(verdict(&RequestPrincipal::Aws {
        arn: "arn:aws:sts::111111111111:assumed-role/r/s".into(),
        account: "111111111111".into(),
        role_arn: Some("arn:aws:iam::111111111111:role/r".into()),
    }));
    assert!(!verdict(&user("bob")));
}

#[test]
fn cross_account_needs_both_sides() {
    let resource = PolicyDocument::parse(
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":"lambda:InvokeFunction","Resource":"*"}}"#,
        PolicyKind::Resource,
    )
    .unwrap();
    let other = RequestPrincipal::Aws {
        arn: "arn:aws:iam::222222222222:user/x".into(),
        account: "222222222222".into(),
        role_arn: None,
    };
    let ctx = RequestContext::new();
    let request = Request {
        action: "lambda:InvokeFunction",
        resource: FN_A,
        principal: &other,
        context: &ctx,
    };
    let everything = [identity(allow(
        serde_json::json!("*"),
        serde_json::json!("*"),
    ))];
    let set = |identity: &'static [Arc<PolicyDocument>],
               resource: Option<&'static PolicyDocument>| PolicySet {
        identity,
        session: None,
        resource,
        cross_account: true,
    };
    let everything: &'static [Arc<PolicyDocument>] = Box::leak(Box::new(everything));
    let resource: &'static PolicyDocument = Box::leak(Box::new(resource));
    assert_eq!(
        decide(&set(everything, None), &request),
        Err(Denial::NoResourceAllow)
    );
    assert_eq!(
        decide(&set(&[], Some(resource)), &request),
        Err(Denial::NoIdentityAllow)
    );
    assert_eq!(decide(&set(everything, Some(resource)), &request), Ok(()));
}

#[test]
fn session_policies_narrow_identity_policies() {
    let docs = [identity(allow(
        serde_json::json!("*"),
        serde_json::json!("*"),
    ))];
    let session = PolicyDocument::from_json(
        &allow(serde_json::json!("s3:*"), serde_json::json!("*")),
        PolicyKind::Identity,
    )
    .unwrap();
    let p = user("bob");
    let ctx = RequestContext::new();
    let set = PolicySet {
        identity: &docs,
        session: Some(&session),
        resource: None,
        cross_account: false,
    };
    assert_eq!(
        decide(
            &set,
            &Request {
                action: "s3:GetObject",
                resource: "*",
                principal: &p,
                context: &ctx
            }
        ),
        Ok(())
    );
    assert_eq!(
        decide(
            &set,
            &Request {
                action: "sqs:SendMessage",
                resource: "*",
                principal: &p,
                context: &ctx
            }
        ),
        Err(Denial::NoSessionAllow)
    );
}

#[test]
fn malformed_documents_say_why_as_aws_does() {
    let cases = [
        (
            "{",
            PolicyKind::Identity,
            "This policy contains invalid Json",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
            PolicyKind::Identity,
            "Policy statement must contain actions.",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
            PolicyKind::Identity,
            "Policy statement must contain resources.",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3","Resource":"*"}]}"#,
            PolicyKind::Identity,
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:a:b","Resource":"*"}]}"#,
            PolicyKind::Identity,
            "Actions/Condition can contain only one colon.",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Principal":"*"}]}"#,
            PolicyKind::Identity,
            "Policy document should not specify a principal.",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*","Principal":"*"}]}"#,
            PolicyKind::Trust,
            "Has prohibited field Resource",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
            PolicyKind::Trust,
            "Missing required field Principal",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"AWS":"bob"}}]}"#,
            PolicyKind::Trust,
            "Invalid principal in policy: \"AWS\":\"bob\"",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}]}"#,
            PolicyKind::Identity,
            "Resource bucket must be in ARN format or \"*\".",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Foo":1}]}"#,
            PolicyKind::Identity,
            "Syntax errors in policy.",
        ),
    ];
    for (text, kind, want) in cases {
        assert_eq!(
            PolicyDocument::parse(text, kind).unwrap_err().0,
            want,
            "{text}"
        );
    }
}

#[test]
fn wildcards() {
    assert!(wildcard("a*c", "abbbc", false));
    assert!(wildcard("*", "", false));
    assert!(!wildcard("a?c", "ac", false));
    assert!(wildcard("a*b*c", "aXbYbZc", false));
    assert!(!wildcard("a*b", "aXbY", false));
}

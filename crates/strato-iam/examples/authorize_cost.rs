//! How long one authorization decision takes (the issue asks ≤ 5 µs):
//! `cargo run --release -p strato-iam --example authorize_cost`. Prints
//! nanoseconds per decision for a user with a handful of policies, for an
//! account's root invoking its own function that has a resource policy,
//! and for a service principal admitted by that policy; not a test, so no
//! threshold.

use std::time::Instant;

use strato_iam::policy::RequestContext;
use strato_iam::{Accessor, Iam, IamCaller, ResourceAccess};
use strato_model::wire::Doc;

fn form(pairs: &[(&str, &str)]) -> Doc {
    pairs.iter().fold(Doc::map(), |doc, (k, v)| {
        doc.with(k, Doc::Form((*v).to_string()))
    })
}

fn main() {
    let iam = Iam::in_memory(true);
    let root = IamCaller {
        account: "111111111111",
        access_key_id: "root",
    };
    let run = |action: &str, pairs: &[(&str, &str)]| {
        if let Err(e) = iam.iam_operation(&root, action, &form(pairs)) {
            eprintln!("{action}: {}", e.message);
        }
    };
    run("CreateUser", &[("UserName", "bench")]);
    run(
        "AttachUserPolicy",
        &[
            ("UserName", "bench"),
            (
                "PolicyArn",
                "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            ),
        ],
    );
    for (i, action) in ["sqs:*", "dynamodb:GetItem", "lambda:InvokeFunction"]
        .iter()
        .enumerate()
    {
        let doc = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"arn:aws:lambda:*:111111111111:function:f-*"}},{{"Effect":"Deny","Action":"lambda:Delete*","Resource":"*","Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}}]}}"#
        );
        run(
            "PutUserPolicy",
            &[
                ("UserName", "bench"),
                ("PolicyName", &format!("p{i}")),
                ("PolicyDocument", &doc),
            ],
        );
    }
    let key = match iam.iam_operation(&root, "CreateAccessKey", &form(&[("UserName", "bench")])) {
        Ok(doc) => doc
            .get("AccessKey")
            .and_then(|k| k.get("AccessKeyId"))
            .and_then(Doc::as_str)
            .unwrap_or_default()
            .to_string(),
        Err(e) => {
            eprintln!("CreateAccessKey: {}", e.message);
            return;
        }
    };
    let resource = "arn:aws:lambda:us-east-1:111111111111:function:f-1";
    let rounds = 200_000u32;
    let mut allowed = 0u32;
    let start = Instant::now();
    for _ in 0..rounds {
        let context = RequestContext::new()
            .with("aws:SecureTransport", "false")
            .with("aws:SourceIp", "127.0.0.1");
        if iam
            .authorize(&key, "lambda:InvokeFunction", resource, context)
            .is_ok()
        {
            allowed += 1;
        }
    }
    let per = start.elapsed().as_nanos() / u128::from(rounds);
    println!("{per} ns per decision ({allowed}/{rounds} allowed)");

    // A function policy as AddPermission writes it for API Gateway.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Id":"default","Statement":[{{"Sid":"apigw","Effect":"Allow","Principal":{{"Service":"apigateway.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"{resource}","Condition":{{"ArnLike":{{"AWS:SourceArn":"arn:aws:execute-api:us-east-1:111111111111:abc/*"}}}}}}]}}"#
    );
    let access = ResourceAccess {
        action: "lambda:InvokeFunction",
        resource,
        owner: "111111111111",
        policy: Some(&policy),
    };
    let measure = |what: &str, who: &Accessor<'_>, source: Option<&str>| {
        let mut allowed = 0u32;
        let start = Instant::now();
        for _ in 0..rounds {
            let mut context = RequestContext::new();
            if let Some(source) = source {
                context.insert("aws:SourceArn", source);
            }
            if iam.authorize_as(who, &access, context).is_ok() {
                allowed += 1;
            }
        }
        let per = start.elapsed().as_nanos() / u128::from(rounds);
        println!("{per} ns per decision, {what} ({allowed}/{rounds} allowed)");
    };
    let root = Accessor::Key {
        access_key_id: "root",
        account: "111111111111",
    };
    measure("root on its own function with a policy", &root, None);
    measure(
        "apigateway.amazonaws.com by the function policy",
        &Accessor::Service("apigateway.amazonaws.com"),
        Some("arn:aws:execute-api:us-east-1:111111111111:abc/prod/GET/items"),
    );
}

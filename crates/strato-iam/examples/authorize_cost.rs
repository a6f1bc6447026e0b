//! How long one authorization decision takes (the issue asks ≤ 5 µs):
//! `cargo run --release -p strato-iam --example authorize_cost`. Prints
//! nanoseconds per decision for a user with a handful of policies; not a
//! test, so no threshold.

use std::time::Instant;

use strato_iam::policy::RequestContext;
use strato_iam::{Iam, IamCaller};
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
}

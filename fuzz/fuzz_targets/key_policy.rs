//! The key-policy parser and evaluator: any document parses or is refused
//! with a PolicyError (never a panic, never unbounded work), and a parsed
//! policy answers a request built from the rest of the input.
#![no_main]

use hsm_core::policy::{ConditionContext, KeyPolicy, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Policy text, then after the first NUL: principal, action, resource,
    // and condition key=value lines, separated by newlines.
    let (doc, req) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(text) = std::str::from_utf8(doc) else {
        return;
    };
    let known = |arn: &str| !arn.contains("unknown");
    let parsed = KeyPolicy::parse(text, &known);
    let stored = KeyPolicy::parse_stored(text);
    // A document parse accepts, the stored-policy parser accepts too.
    if parsed.is_ok() {
        assert!(stored.is_ok(), "parse accepted what parse_stored refused");
    }
    let Ok(policy) = parsed else {
        return;
    };
    let _ = (
        policy.uses_conditions(),
        policy.needs_resource(),
        policy.statement_count(),
    );
    let _ = policy.sids().count();
    let req = String::from_utf8_lossy(req);
    let mut lines = req.split('\n');
    let principal = lines.next().unwrap_or("arn:aws:iam::111122223333:root");
    let action = lines.next().unwrap_or("kms:Encrypt");
    let resource = lines.next().unwrap_or("*");
    let mut context = ConditionContext::default();
    for line in lines.take(16) {
        if let Some((k, v)) = line.split_once('=') {
            context.set(k, v);
        }
    }
    let _ = policy.evaluate(&Request {
        principal,
        action,
        resource,
        context: &context,
    });
});

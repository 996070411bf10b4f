//! Entry point for the fuzz targets in `fuzz/`; not part of the API.

use hsm_core::{Caller, Hsm, Principal};

use super::routes;
use crate::service::Lane;

/// Decodes `body` as the request of `target` (an `X-Amz-Target` value) the
/// way the endpoint does; when it decodes and `hsm` is given, runs it as
/// the account's administrator unless it generates keys (slow lane: RSA
/// generation would dominate a fuzzing run). Returns whether the request
/// decoded; the answer itself is encoded and dropped.
pub fn route_and_run(hsm: Option<&Hsm>, target: Option<&str>, body: &[u8]) -> bool {
    let Ok(call) = routes::route(target, body) else {
        return false;
    };
    if let Some(hsm) = hsm {
        if call.lane != Lane::Slow {
            let caller = Caller::new(Principal::Root, "fuzz");
            if let Ok(value) = (call.job)(hsm, &caller) {
                let _ = serde_json::to_vec(&value);
            }
        }
    }
    true
}

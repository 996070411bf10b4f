//! Who is calling over gRPC: the principal the transport proved.
//!
//! - Unix socket: the peer's uid from the kernel (SO_PEERCRED). Root and
//!   the daemon's own uid are the account's administrators; a uid bound to
//!   a user (`tinfoil create-user --unix-uid N`) is that user; any other
//!   uid is refused (PERMISSION_DENIED / AccessDeniedException), or acts
//!   as the user `uid-N` with `socket_anonymous_uids`. The socket is 0600,
//!   so by default only the daemon's owner and root can connect;
//!   `socket_group` makes it 0660 for one group.
//! - TCP with TLS client certificates: a certificate bound to a user
//!   (`--cert-fingerprint`) is that user; a certificate the configured CA
//!   signed but bound to no user acts for the administrators.
//! - TCP without client certificates (TLS without `tls_client_ca_file`, or
//!   `--insecure-loopback`): the administrators. Configure client
//!   certificates whenever others can reach the port.

use hsm_core::{Caller, Hsm, Principal};
use tonic::{Request, Status};

use crate::connection::ConnectionInfo;
use crate::status;

/// The uid this daemon runs as (the owner of `/proc/self`), read without
/// unsafe code; `u32::MAX` (nobody) if it cannot be read.
pub fn daemon_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// The caller of `request`, or PERMISSION_DENIED for a peer that stands
/// for no principal.
pub fn caller_of<T>(
    hsm: &Hsm,
    daemon_uid: u32,
    anonymous_uids: bool,
    request: &Request<T>,
) -> Result<Caller, Status> {
    let user_agent = request
        .metadata()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect::<String>());
    let mut caller = if let Some(info) = request.extensions().get::<ConnectionInfo>() {
        unix_caller(hsm, daemon_uid, anonymous_uids, info)?
    } else {
        tcp_caller(hsm, request)
    };
    caller.user_agent = user_agent;
    Ok(caller)
}

fn unix_caller(
    hsm: &Hsm,
    daemon_uid: u32,
    anonymous_uids: bool,
    info: &ConnectionInfo,
) -> Result<Caller, Status> {
    let Some(peer) = info.peer else {
        return Err(denied(
            "the daemon could not learn the peer's credentials from the kernel",
        ));
    };
    let uid = peer.uid();
    let source = match peer.pid() {
        Some(pid) => format!("unix:uid={uid},pid={pid}"),
        None => format!("unix:uid={uid}"),
    };
    match hsm.principal_for_uid(uid, daemon_uid) {
        Some(principal) => Ok(Caller::new(principal, source)),
        None if anonymous_uids => Ok(Caller::new(Principal::User(format!("uid-{uid}")), source)),
        None => Err(denied(&format!(
            "uid {uid} is not bound to a Tinfoil user; an administrator can bind it with \
             `tinfoil create-user --user-name NAME --unix-uid {uid}`"
        ))),
    }
}

fn tcp_caller<T>(hsm: &Hsm, request: &Request<T>) -> Caller {
    let source = request
        .remote_addr()
        .map_or_else(|| "tcp".to_string(), |addr| addr.ip().to_string());
    let principal = request
        .peer_certs()
        .and_then(|certs| certs.first().cloned())
        .and_then(|leaf| {
            let digest = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            hsm.principal_for_certificate(&hex)
        })
        .unwrap_or(Principal::Root);
    Caller::new(principal, source)
}

fn denied(message: &str) -> Status {
    status::with_reason(
        tonic::Code::PermissionDenied,
        "AccessDeniedException",
        message.to_string(),
    )
}

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
//!   (`--cert-fingerprint`) is that user; one listed in
//!   `tls_admin_cert_fingerprints` acts for the administrators; any other
//!   is refused (PERMISSION_DENIED / AccessDeniedException), even though
//!   the configured CA signed it.
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

/// The daemon's rules for turning a transport's proof into a principal.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The daemon's own uid (an administrator on the socket).
    pub daemon_uid: u32,
    /// Whether unbound socket uids act as `uid-N`.
    pub anonymous_uids: bool,
    /// Client certificates (SHA-256, lowercase hex) acting as administrators.
    pub admin_certificates: &'a [String],
}

/// The caller of `request`, or PERMISSION_DENIED for a peer that stands
/// for no principal.
pub fn caller_of<T>(hsm: &Hsm, rules: &Rules<'_>, request: &Request<T>) -> Result<Caller, Status> {
    let user_agent = request
        .metadata()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect::<String>());
    let mut caller = if let Some(info) = request.extensions().get::<ConnectionInfo>() {
        unix_caller(hsm, rules.daemon_uid, rules.anonymous_uids, info)?
    } else {
        tcp_caller(hsm, rules.admin_certificates, request)?
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

fn tcp_caller<T>(
    hsm: &Hsm,
    admin_certificates: &[String],
    request: &Request<T>,
) -> Result<Caller, Status> {
    let source = request
        .remote_addr()
        .map_or_else(|| "tcp".to_string(), |addr| addr.ip().to_string());
    let Some(leaf) = request
        .peer_certs()
        .and_then(|certs| certs.first().cloned())
    else {
        // TLS without client certificates, or --insecure-loopback: the
        // operator chose who may reach the port.
        return Ok(Caller::new(Principal::Root, source));
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    if let Some(principal) = hsm.principal_for_certificate(&hex) {
        return Ok(Caller::new(principal, source));
    }
    if admin_certificates.contains(&hex) {
        return Ok(Caller::new(Principal::Root, source));
    }
    Err(denied(&format!(
        "the client certificate (SHA-256 {hex}) is bound to no Tinfoil user; bind it with \
         `tinfoil create-user --user-name NAME --cert-fingerprint {hex}` or list it in \
         tls_admin_cert_fingerprints"
    )))
}

fn denied(message: &str) -> Status {
    status::with_reason(
        tonic::Code::PermissionDenied,
        "AccessDeniedException",
        message.to_string(),
    )
}

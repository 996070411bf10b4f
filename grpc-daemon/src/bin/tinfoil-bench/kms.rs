//! The AWS KMS JSON endpoint side of tinfoil-bench: Encrypt over HTTP/1.1
//! (hyper's client, one keep-alive connection per worker, as an AWS SDK's
//! connection pool holds them), every request SigV4-signed by the
//! `aws-sigv4` crate (the signer the AWS SDKs for Rust use).

use std::net::SocketAddr;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Where and as whom the KMS Encrypt requests go.
#[derive(Clone)]
pub struct Target {
    /// The endpoint's loopback address.
    pub addr: SocketAddr,
    /// The key (its ARN).
    pub key_arn: String,
    /// The access key the requests are signed with.
    pub access_key_id: String,
    /// Its secret (a throwaway bench store's).
    pub secret: String,
    /// The signing region.
    pub region: String,
}

/// One worker's connection and signing identity.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    identity: Identity,
    target: Target,
    host: String,
    body: Bytes,
}

impl Client {
    /// Opens a connection and prepares the Encrypt body for `plaintext`.
    pub async fn connect(target: &Target, plaintext: &[u8]) -> Client {
        let tcp = tokio::net::TcpStream::connect(target.addr)
            .await
            .expect("connect to the KMS endpoint");
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        let body = serde_json::json!({
            "KeyId": target.key_arn,
            "Plaintext": base64::engine::general_purpose::STANDARD.encode(plaintext),
        })
        .to_string();
        Client {
            sender,
            identity: Credentials::new(
                &target.access_key_id,
                &target.secret,
                None,
                None,
                "tinfoil-bench",
            )
            .into(),
            target: target.clone(),
            host: target.addr.to_string(),
            body: Bytes::from(body),
        }
    }

    /// One signed Encrypt; panics unless the endpoint answers 200.
    pub async fn encrypt(&mut self) {
        let request = self.signed();
        self.sender.ready().await.expect("connection ready");
        let response = self
            .sender
            .send_request(request)
            .await
            .expect("KMS Encrypt response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("KMS Encrypt body")
            .to_bytes();
        assert!(
            status == http::StatusCode::OK,
            "KMS Encrypt answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    /// The Encrypt request, signed now (SHA-256 of the body, HMAC chain).
    fn signed(&self) -> http::Request<Full<Bytes>> {
        let headers = [
            ("host", self.host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "TrentService.Encrypt"),
        ];
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.target.region)
            .name("kms")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("signing parameters")
            .into();
        let signable = SignableRequest::new(
            "POST",
            format!("http://{}/", self.host),
            headers.iter().copied(),
            SignableBody::Bytes(&self.body),
        )
        .expect("signable request");
        let (instructions, _signature) = sign(signable, &params).expect("sign").into_parts();
        let mut builder = http::Request::post("/");
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        for (name, value) in instructions.headers() {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(self.body.clone()))
            .expect("a valid request")
    }
}

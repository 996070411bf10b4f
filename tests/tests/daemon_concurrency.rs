//! 64 concurrent gRPC clients, each on its own connection, mix Encrypt,
//! Decrypt, GenerateDataKey and RotateKeyOnDemand for 10 seconds
//! (TINFOIL_E2E_CONCURRENCY_SECS overrides): no call fails, and every
//! ciphertext made during the run decrypts to its plaintext afterwards.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tinfoil_e2e_tests::daemon::{Daemon, Store};
use tinfoil_proto::v1 as pb;

const CLIENTS: usize = 64;
const KEYS: usize = 4;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A ciphertext made during the run and what it must decrypt to.
struct Made {
    blob: Vec<u8>,
    context: BTreeMap<String, String>,
    plaintext: Vec<u8>,
}

#[derive(Default, Debug)]
struct Counts {
    encrypt: u64,
    decrypt: u64,
    data_key: u64,
    rotate: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_mixing_operations() {
    let seconds: u64 = std::env::var("TINFOIL_E2E_CONCURRENCY_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let mut setup = daemon.client().await;
    let mut keys = Vec::new();
    for _ in 0..KEYS {
        let key = setup
            .create_key(pb::CreateKeyRequest::default())
            .await
            .expect("create key")
            .into_inner()
            .key_metadata
            .expect("metadata")
            .key_id;
        keys.push(key);
    }

    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client_no in 0..CLIENTS {
        let mut client = daemon.client().await;
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (client_no as u64 + 1));
            let mut made: Vec<Made> = Vec::new();
            let mut counts = Counts::default();
            let mut op = 0u64;
            while Instant::now() < until {
                op += 1;
                let key_id = keys[rng.below(KEYS)].clone();
                let context: BTreeMap<String, String> = [
                    ("client".to_string(), client_no.to_string()),
                    ("op".to_string(), op.to_string()),
                ]
                .into();
                match rng.below(16) {
                    0 => {
                        client
                            .rotate_key_on_demand(pb::RotateKeyOnDemandRequest { key_id })
                            .await
                            .map_err(|s| format!("RotateKeyOnDemand: {s:?}"))?;
                        counts.rotate += 1;
                    }
                    1..=5 => {
                        let key = client
                            .generate_data_key(pb::GenerateDataKeyRequest {
                                key_id,
                                key_spec: Some("AES_256".into()),
                                number_of_bytes: None,
                                encryption_context: context.clone(),
                            })
                            .await
                            .map_err(|s| format!("GenerateDataKey: {s:?}"))?
                            .into_inner();
                        if key.plaintext.len() != 32 {
                            return Err(format!("data key of {} bytes", key.plaintext.len()));
                        }
                        made.push(Made {
                            blob: key.ciphertext_blob,
                            context,
                            plaintext: key.plaintext,
                        });
                        counts.data_key += 1;
                    }
                    6..=10 if !made.is_empty() => {
                        let pick = &made[rng.below(made.len())];
                        let plain = client
                            .decrypt(pb::DecryptRequest {
                                ciphertext_blob: pick.blob.clone(),
                                encryption_context: pick.context.clone(),
                                ..Default::default()
                            })
                            .await
                            .map_err(|s| format!("Decrypt: {s:?}"))?
                            .into_inner()
                            .plaintext;
                        if plain != pick.plaintext {
                            return Err("Decrypt returned other bytes".into());
                        }
                        counts.decrypt += 1;
                    }
                    _ => {
                        let plaintext: Vec<u8> =
                            (0..1 + rng.below(4096)).map(|_| rng.next() as u8).collect();
                        let blob = client
                            .encrypt(pb::EncryptRequest {
                                key_id,
                                plaintext: plaintext.clone(),
                                encryption_context: context.clone(),
                                encryption_algorithm: None,
                            })
                            .await
                            .map_err(|s| format!("Encrypt: {s:?}"))?
                            .into_inner()
                            .ciphertext_blob;
                        made.push(Made {
                            blob,
                            context,
                            plaintext,
                        });
                        counts.encrypt += 1;
                    }
                }
            }
            Ok::<_, String>((made, counts))
        }));
    }

    let mut all_made = Vec::new();
    let mut total = Counts::default();
    for task in tasks {
        let (made, counts) = task.await.expect("client task").expect("no call failed");
        all_made.push(made);
        total.encrypt += counts.encrypt;
        total.decrypt += counts.decrypt;
        total.data_key += counts.data_key;
        total.rotate += counts.rotate;
    }
    assert!(
        total.encrypt > 0 && total.decrypt > 0 && total.data_key > 0 && total.rotate > 0,
        "every operation ran: {total:?}"
    );

    // Afterwards (keys rotated many times) every ciphertext still decrypts.
    let mut checks = Vec::new();
    for made in all_made {
        let mut client = daemon.client().await;
        checks.push(tokio::spawn(async move {
            for m in made {
                let plain = client
                    .decrypt(pb::DecryptRequest {
                        ciphertext_blob: m.blob,
                        encryption_context: m.context,
                        ..Default::default()
                    })
                    .await
                    .map_err(|s| format!("Decrypt afterwards: {s:?}"))?
                    .into_inner()
                    .plaintext;
                if plain != m.plaintext {
                    return Err("a ciphertext decrypted to other bytes".to_string());
                }
            }
            Ok(())
        }));
    }
    for check in checks {
        check
            .await
            .expect("check task")
            .expect("every ciphertext decrypts");
    }
    let versions = setup
        .describe_key(pb::DescribeKeyRequest {
            key_id: keys[0].clone(),
        })
        .await
        .expect("describe")
        .into_inner()
        .key_metadata
        .expect("metadata")
        .current_key_version;
    assert!(versions > 1, "the key was never rotated");
}

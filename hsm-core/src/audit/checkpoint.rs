//! Signed checkpoints in the C2SP `tlog-checkpoint` format, as `signed-note`s
//! (<https://c2sp.org/tlog-checkpoint>, <https://c2sp.org/signed-note>):
//!
//! ```text
//! tinfoil.local/audit/111122223333/6f1c...      <- origin (the log's name)
//! 1000                                          <- tree size: records 1..=1000
//! q2Fd...=                                      <- root hash, base64
//!                                               <- blank line
//! — tinfoil.local/audit/111122223333/6f1c... AbCdEf...   <- signature line
//! ```
//!
//! The signature line is an em dash, the key name (the origin), and base64
//! of the 4-byte key id followed by the 64-byte Ed25519 signature over the
//! body (the three lines with their newlines). The key id is the first four
//! bytes of `SHA-256(name || "\n" || 0x01 || public key)`, and the public key
//! is published as a note verifier key `name+<key id hex>+base64(0x01 ||
//! public key)`, the format Go's `golang.org/x/mod/sumdb/note` reads.
//!
//! **Root hash: the chain head, not a Merkle root.** The root of a
//! checkpoint of size N is the hash of record N, which commits to every
//! record before it through the `previousHash` links. Tinfoil's auditors
//! read the whole exported log anyway (they check every record), so the
//! logarithmic inclusion and consistency proofs a Merkle tree buys are not
//! needed, and the head hash is what each record already carries: no second
//! structure to keep in step, and a checkpoint is checked by comparing one
//! hash. Two checkpoints are consistent exactly when both roots lie on the
//! one chain, which the verifier sees directly.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use super::chain::Hash;

/// The signature algorithm byte of Ed25519 in signed-note key ids.
const ALG_ED25519: u8 = 0x01;
/// The longest checkpoint text accepted when reading.
pub const MAX_NOTE_LEN: usize = 4096;

/// A checkpoint's signed contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name.
    pub origin: String,
    /// How many records it covers (records 1..=size).
    pub size: u64,
    /// The hash of record `size`.
    pub root: Hash,
}

fn key_id(name: &str, public_key: &[u8]) -> [u8; 4] {
    let mut input = Vec::with_capacity(name.len() + 2 + public_key.len());
    input.extend_from_slice(name.as_bytes());
    input.push(b'\n');
    input.push(ALG_ED25519);
    input.extend_from_slice(public_key);
    let hash = digest(&SHA256, &input);
    let mut id = [0u8; 4];
    id.copy_from_slice(&hash.as_ref()[..4]);
    id
}

/// The checkpoint body: origin, size and root hash lines.
pub fn body(origin: &str, size: u64, root: &Hash) -> String {
    format!("{origin}\n{size}\n{}\n", B64.encode(root))
}

/// The log's signing key (Ed25519), unsealed in memory.
pub struct Signer {
    pair: Ed25519KeyPair,
    name: String,
    id: [u8; 4],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from a PKCS#8 Ed25519 key, named `origin`.
    pub fn from_pkcs8(pkcs8: &[u8], origin: &str) -> Option<Signer> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).ok()?;
        let id = key_id(origin, pair.public_key().as_ref());
        Some(Signer {
            pair,
            name: origin.to_string(),
            id,
        })
    }

    /// The log's name (the checkpoints' origin and the key's name).
    pub fn origin(&self) -> &str {
        &self.name
    }

    /// The note verifier key: `name+<key id hex>+base64(0x01 || key)`.
    pub fn verifier_key(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.pair.public_key().as_ref());
        format!(
            "{}+{}+{}",
            self.name,
            super::chain::to_hex(&self.id),
            B64.encode(key)
        )
    }

    /// The signed checkpoint of a log of `size` records whose last hash is `root`.
    pub fn sign(&self, size: u64, root: &Hash) -> String {
        let text = body(&self.name, size, root);
        let signature = self.pair.sign(text.as_bytes());
        let mut blob = self.id.to_vec();
        blob.extend_from_slice(signature.as_ref());
        format!("{text}\n\u{2014} {} {}\n", self.name, B64.encode(blob))
    }
}

/// Makes a new PKCS#8 Ed25519 key.
pub fn generate_pkcs8() -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let rng = ring::rand::SystemRandom::new();
    Ed25519KeyPair::generate_pkcs8(&rng)
        .ok()
        .map(|doc| zeroize::Zeroizing::new(doc.as_ref().to_vec()))
}

/// A public key that checks checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    /// The key's name: the origin its checkpoints carry.
    pub name: String,
    id: [u8; 4],
    public_key: [u8; 32],
}

impl Verifier {
    /// Parses a note verifier key (`name+hex id+base64 key`); the id must
    /// match the name and key.
    pub fn parse(text: &str) -> std::result::Result<Verifier, String> {
        let text = text.trim();
        // The name holds no `+`; the base64 key may.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("the public key is not of the form name+keyid+key".to_string());
        };
        let key = B64
            .decode(key)
            .map_err(|_| "the public key's key part is not base64".to_string())?;
        if key.len() != 33 || key[0] != ALG_ED25519 {
            return Err("the public key is not an Ed25519 note key".to_string());
        }
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(&key[1..]);
        let id = key_id(name, &public_key);
        if super::chain::to_hex(&id) != id_hex.to_ascii_lowercase() {
            return Err("the public key's key id does not match its name and key".to_string());
        }
        Ok(Verifier {
            name: name.to_string(),
            id,
            public_key,
        })
    }

    /// Checks a signed checkpoint and returns what it signs. `Err` says
    /// why it is not a valid checkpoint of this key.
    pub fn open(&self, note: &str) -> std::result::Result<Checkpoint, String> {
        if note.len() > MAX_NOTE_LEN {
            return Err(format!("it is longer than {MAX_NOTE_LEN} bytes"));
        }
        let Some(split) = note.find("\n\n") else {
            return Err("it has no blank line before its signatures".to_string());
        };
        let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
        let mut signed = false;
        for line in signatures.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err("a signature line does not start with an em dash".to_string());
            };
            let Some((name, blob)) = rest.rsplit_once(' ') else {
                return Err("a signature line has no signature".to_string());
            };
            if name != self.name {
                continue;
            }
            let blob = B64
                .decode(blob)
                .map_err(|_| "its signature is not base64".to_string())?;
            if blob.len() != 68 || blob[..4] != self.id {
                continue;
            }
            UnparsedPublicKey::new(&ED25519, &self.public_key)
                .verify(text.as_bytes(), &blob[4..])
                .map_err(|_| "its signature does not verify under the public key".to_string())?;
            signed = true;
        }
        if !signed {
            return Err("it carries no signature by the public key".to_string());
        }
        let mut lines = text.lines();
        let origin = lines.next().unwrap_or_default();
        if origin != self.name {
            return Err(format!(
                "its origin {origin:?} is not the log {:?}",
                self.name
            ));
        }
        let size = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or("its tree size is not a decimal number")?;
        let root = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .and_then(|b| <Hash>::try_from(b.as_slice()).ok())
            .ok_or("its root hash is not 32 bytes of base64")?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(name: &str) -> Signer {
        Signer::from_pkcs8(&generate_pkcs8().unwrap(), name).unwrap()
    }

    #[test]
    fn a_checkpoint_verifies_under_its_key_only() {
        let s = signer("tinfoil.local/audit/1/a");
        let note = s.sign(5, &[7u8; 32]);
        let v = Verifier::parse(&s.verifier_key()).unwrap();
        assert_eq!(
            v.open(&note).unwrap(),
            Checkpoint {
                origin: "tinfoil.local/audit/1/a".into(),
                size: 5,
                root: [7u8; 32]
            }
        );
        let tampered = note.replacen("\n5\n", "\n6\n", 1);
        assert!(v.open(&tampered).unwrap_err().contains("does not verify"));
        let other = signer("tinfoil.local/audit/1/a");
        assert!(v.open(&other.sign(5, &[7u8; 32])).is_err());
    }

    #[test]
    fn a_bad_verifier_key_is_refused() {
        let s = signer("log");
        let good = s.verifier_key();
        assert!(Verifier::parse(&good).is_ok());
        assert!(Verifier::parse("nonsense").is_err());
        assert!(Verifier::parse(&good.replacen("log+", "gol+", 1)).is_err());
    }
}

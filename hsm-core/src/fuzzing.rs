//! Entry points for the fuzz targets in `fuzz/` and the vector tests
//! (`tests/wycheproof*.rs`); not part of the API and may change at any
//! time. Each function reaches one internal decoder with caller-chosen
//! bytes and reports only whether it accepted them, so nothing secret
//! leaves the crate through here.

use crate::sealing::KEY_LEN;
use crate::types::{KeySpec, KeyState, KeyUsage, Origin, RotationType};

/// Decodes one stored row the way [`crate::Hsm::open`] and the store's
/// loader do, from bytes an attacker could have written into the store's
/// file: `kind` picks the column family (0: KDF parameters, 1: key id,
/// 2: key spec/usage/origin/state/rotation-type names, 3: a grant's
/// encryption-context constraint, 4: wrapped key material under a fixed
/// key, 5: the ciphertext blob header). Returns whether it was accepted.
pub fn decode_store_row(kind: u8, bytes: &[u8]) -> bool {
    let text = || std::str::from_utf8(bytes).ok();
    match kind % 6 {
        0 => crate::hsm::decode_params(bytes).is_ok(),
        1 => text().is_some_and(|t| uuid::Uuid::parse_str(t).is_ok()),
        2 => text().is_some_and(|t| {
            [
                KeySpec::parse(t).is_ok(),
                KeyUsage::parse(t).is_ok(),
                Origin::parse(t).is_ok(),
                KeyState::parse(t).is_ok(),
                RotationType::parse(t).is_ok(),
            ]
            .contains(&true)
        }),
        3 => crate::grants::decode_context(text().map(str::to_owned)).is_ok(),
        4 => {
            let key = [0x42u8; KEY_LEN];
            let (aad, wrapped) = bytes.split_at(
                bytes
                    .len()
                    .min(bytes.first().copied().unwrap_or(0) as usize),
            );
            crate::sealing::unwrap(&key, aad, wrapped).is_some()
                | crate::sealing::unwrap_key(&key, aad, wrapped).is_some()
        }
        _ => crate::envelope::parse_header(bytes).is_ok(),
    }
}

/// Signature verification with an outside public key, as
/// `asymmetric::verify_with_public_key` documents (Wycheproof tests).
pub fn verify_with_public_key(
    spec: KeySpec,
    algorithm: crate::types::SigningAlgorithm,
    public_key: &[u8],
    message: &[u8],
    message_type: crate::types::MessageType,
    signature: &[u8],
    fixed: bool,
) -> crate::Result<bool> {
    crate::asymmetric::verify_with_public_key(
        spec,
        algorithm,
        public_key,
        message,
        message_type,
        signature,
        fixed,
    )
}

/// RSAES-OAEP decryption with a PKCS#8 private key and an optional label,
/// through the core's RSA path (Wycheproof tests); any failure is an error.
pub fn rsa_oaep_decrypt(
    spec: KeySpec,
    private_pkcs8: &[u8],
    algorithm: crate::types::EncryptionAlgorithm,
    ciphertext: &[u8],
    label: Option<&[u8]>,
) -> crate::Result<zeroize::Zeroizing<Vec<u8>>> {
    crate::asymmetric::rsa_decrypt_labelled(spec, private_pkcs8, algorithm, ciphertext, label)
}

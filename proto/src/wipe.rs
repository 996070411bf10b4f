//! The codec of every generated client and server (build.rs sets it with
//! `codec_path`): prost's, except that each message is wiped as soon as it
//! is encoded.
//!
//! Every generated message implements [`zeroize::Zeroize`] (derived in
//! build.rs): `zeroize()` overwrites every `bytes` and `string` field and
//! recurses into nested messages, repeated fields and oneofs (maps, which
//! hold encryption contexts and are never secret, are left alone). So a
//! response carrying plaintext or a data key (DecryptResponse,
//! GenerateDataKeyResponse, P11BytesResponse ...) does not linger in the
//! heap once tonic has it on the wire, and neither does a client's request
//! (the CLI's EncryptRequest, the PKCS#11 module's calls).
//!
//! Decoding is prost's own (the same errors, which the daemon maps to
//! INVALID_ARGUMENT). A decoded request belongs to the handler, which wipes
//! what it received once the core has used it (`Zeroizing`), see the
//! daemon's services. What tonic, hyper and h2 keep of the encoded bytes
//! (their frame and decode buffers) is outside this codec: see the README's
//! memory section.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::ProstDecoder;
use zeroize::{Zeroize, Zeroizing};

/// A [`Codec`] for `application/grpc+proto` through prost that wipes each
/// message it encodes.
#[derive(Debug, Clone)]
pub struct WipingCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for WipingCodec<T, U> {
    fn default() -> Self {
        WipingCodec { _pd: PhantomData }
    }
}

impl<T, U> Codec for WipingCodec<T, U>
where
    T: Message + Zeroize + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = WipingEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        WipingEncoder { _pd: PhantomData }
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

/// The [`Encoder`] of [`WipingCodec`]: [`encode_and_wipe`] on each item.
#[derive(Debug, Clone)]
pub struct WipingEncoder<T> {
    _pd: PhantomData<T>,
}

impl<T: Message + Zeroize> Encoder for WipingEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, mut item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        encode_and_wipe(&mut item, buf)
    }
}

/// Encodes `item` into `buf`, then wipes every `bytes` and `string` field of
/// `item` (nested messages and oneofs included), whether or not encoding
/// succeeded.
pub fn encode_and_wipe<T: Message + Zeroize>(
    item: &mut T,
    buf: &mut impl prost::bytes::BufMut,
) -> Result<(), Status> {
    let outcome = item
        .encode(buf)
        .map_err(|e| Status::internal(format!("encoding a message: {e}")));
    item.zeroize();
    outcome
}

/// Appends `data` to `buf`; when `buf` must grow, its contents move to a
/// new buffer of at least twice the size and the old one is wiped (a plain
/// `Vec` growth would free it as it is). For reassembling chunked calls and
/// replies.
pub fn append_wiping(buf: &mut Zeroizing<Vec<u8>>, data: &[u8]) {
    let needed = buf.len() + data.len();
    if needed > buf.capacity() {
        let mut grown = Zeroizing::new(Vec::with_capacity(needed.max(2 * buf.capacity())));
        grown.extend_from_slice(buf);
        // The old buffer is wiped as `Zeroizing` drops it.
        *buf = grown;
    }
    buf.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::*;

    #[test]
    fn a_response_is_wiped_once_encoded_and_the_wire_is_unchanged() {
        let original = DecryptResponse {
            key_id: "key-1".into(),
            plaintext: b"the secret plaintext".to_vec(),
            encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
        };
        let mut item = original.clone();
        let mut wire = Vec::new();
        encode_and_wipe(&mut item, &mut wire).unwrap();
        assert_eq!(wire, original.encode_to_vec());
        assert!(item.plaintext.is_empty() && item.key_id.is_empty());
        assert!(item.encryption_algorithm.is_empty());
    }

    #[test]
    fn nested_messages_repeated_fields_and_oneofs_are_wiped() {
        let mut reply = P11PipeReply {
            reply: Some(p11_pipe_reply::Reply::Bytes(P11BytesResponse {
                data: b"a derived key".to_vec(),
            })),
        };
        encode_and_wipe(&mut reply, &mut Vec::new()).unwrap();
        // Option<oneof> is wiped in place, then set to None.
        assert_eq!(reply, P11PipeReply::default());

        let mut oneof = p11_pipe_reply::Reply::Bytes(P11BytesResponse {
            data: b"key".to_vec(),
        });
        oneof.zeroize();
        match oneof {
            p11_pipe_reply::Reply::Bytes(b) => assert!(b.data.is_empty()),
            _ => panic!("the variant changed"),
        }

        let mut pair = GenerateDataKeyPairResponse {
            private_key_plaintext: b"PKCS#8".to_vec(),
            private_key_ciphertext_blob: b"blob".to_vec(),
            public_key: b"SPKI".to_vec(),
            key_id: "k".into(),
            key_pair_spec: "ECC_NIST_P256".into(),
        };
        encode_and_wipe(&mut pair, &mut Vec::new()).unwrap();
        assert_eq!(pair, GenerateDataKeyPairResponse::default());
    }

    #[test]
    fn a_clients_request_is_wiped_once_encoded_but_not_its_context() {
        let mut request = EncryptRequest {
            key_id: "alias/app".into(),
            plaintext: b"card number".to_vec(),
            encryption_context: [("purpose".to_string(), "test".to_string())].into(),
            encryption_algorithm: None,
        };
        encode_and_wipe(&mut request, &mut Vec::new()).unwrap();
        assert!(request.plaintext.is_empty());
        // Maps are skipped (contexts are not secret: the audit log has them).
        assert_eq!(request.encryption_context.len(), 1);
    }

    #[test]
    fn appended_parts_keep_their_order_and_the_buffer_only_grows() {
        let mut call = Zeroizing::new(Vec::new());
        let mut expected = Vec::new();
        for i in 0..40u8 {
            let part = vec![i; usize::from(i) * 7 + 1];
            let before = call.capacity();
            append_wiping(&mut call, &part);
            expected.extend_from_slice(&part);
            assert!(call.capacity() >= before && call.capacity() >= call.len());
        }
        assert_eq!(*call, expected);
    }

    /// Fails when build.rs stops installing the codec: every generated
    /// client and server method (two per rpc) must build WipingCodec, and
    /// none prost's own.
    #[test]
    fn every_generated_client_and_server_method_uses_the_wiping_codec() {
        let generated = include_str!(concat!(env!("OUT_DIR"), "/tinfoil.v1.rs"));
        let rpcs: usize = [
            include_str!("../proto/tinfoil/v1/kms.proto"),
            include_str!("../proto/tinfoil/v1/pkcs11.proto"),
        ]
        .iter()
        .flat_map(|proto| proto.lines())
        .filter(|line| line.trim_start().starts_with("rpc "))
        .count();
        assert!(rpcs > 50, "{rpcs} rpcs");
        assert_eq!(
            generated
                .matches("crate::wipe::WipingCodec::default()")
                .count(),
            2 * rpcs
        );
        assert!(!generated.contains("ProstCodec"));
    }

    /// The codec's type only encodes messages that can be wiped: this does
    /// not compile if a generated message loses its `Zeroize` impl.
    #[test]
    fn the_codec_types_of_the_services_are_wipeable() {
        fn wipeable<T: Message + Zeroize + Default + Send + 'static>() -> WipingCodec<T, T> {
            WipingCodec::default()
        }
        let _ = wipeable::<DecryptResponse>();
        let _ = wipeable::<P11BytesResponse>();
        let _ = wipeable::<P11Chunk>();
        let _ = wipeable::<AccessKey>();
    }
}

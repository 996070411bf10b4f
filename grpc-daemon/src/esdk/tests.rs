//! Round trips and every kind of damage, without KMS (a random data key and
//! a dummy encrypted data key).

use std::collections::BTreeMap;

use proptest::prelude::*;
use ring::rand::{SecureRandom, SystemRandom};

use super::body::message_context;
use super::*;

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    SystemRandom::new().fill(&mut k).unwrap();
    k
}

fn edk() -> EncryptedDataKey {
    EncryptedDataKey {
        provider_id: KMS_PROVIDER_ID.into(),
        provider_info: b"arn:aws:kms:us-east-1:111122223333:key/test".to_vec(),
        ciphertext: vec![7u8; 40],
    }
}

fn seal(
    plain: &[u8],
    suite: Suite,
    frame_length: u32,
    user: &BTreeMap<String, String>,
    key: &[u8; 32],
) -> Vec<u8> {
    let signer = suite.is_signed().then(|| Signer::generate().unwrap());
    let context = message_context(user, signer.as_ref()).unwrap();
    let mut out = Vec::new();
    let mut reported = 0u64;
    let n = encrypt(
        &mut &plain[..],
        &mut out,
        EncryptRequest {
            suite,
            frame_length,
            context,
            encrypted_data_keys: vec![edk()],
            data_key: key,
            signer,
        },
        &mut |k| reported += k,
    )
    .unwrap();
    assert_eq!(n, out.len() as u64);
    assert_eq!(reported, plain.len() as u64);
    out
}

fn open_with(
    message: &[u8],
    key: &[u8; 32],
    limits: &Limits,
) -> Result<(Header, Vec<u8>), EsdkError> {
    let mut input = message;
    let parsed = read_header(&mut input, limits)?;
    let mut out = Vec::new();
    let n = decrypt(&parsed, key, &mut input, &mut out, &mut |_| {})?;
    assert_eq!(n, out.len() as u64);
    Ok((parsed.header, out))
}

fn open(message: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, EsdkError> {
    open_with(message, key, &Limits::default()).map(|(_, p)| p)
}

fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

#[test]
fn round_trips_at_frame_edges_for_both_suites() {
    let key = random_key();
    for suite in [Suite::CommitKey, Suite::CommitKeyEcdsaP384] {
        for (len, fl) in [
            (0, 4096),
            (1, 4096),
            (4095, 4096),
            (4096, 4096),
            (4097, 4096),
            (3 * 64, 64),
            (1000, 1),
        ] {
            for context in [ctx(&[]), ctx(&[("purpose", "test"), ("a", "é=,")])] {
                let plain = data(len);
                let msg = seal(&plain, suite, fl, &context, &key);
                let (header, back) = open_with(&msg, &key, &Limits::default()).unwrap();
                assert_eq!(back, plain, "suite {suite} len {len} frame {fl}");
                assert_eq!(header.suite, suite);
                assert_eq!(header.frame_length, fl);
                assert_eq!(header.message_id.len(), 32);
                for (k, v) in &context {
                    assert_eq!(header.context.get(k), Some(v));
                }
                assert_eq!(
                    header.context.contains_key(PUBLIC_KEY_CONTEXT_KEY),
                    suite.is_signed()
                );
            }
        }
    }
}

/// Frames are sealed in place inside the input's chunks (256 KiB for a
/// slice; any size from [`ReadAhead`]); a frame spanning two chunks (or
/// more) goes through the carry buffer. Every shape round-trips.
#[test]
fn frames_across_input_chunks_round_trip() {
    let key = random_key();
    let chunk = 256 * 1024;
    for (len, fl) in [
        (chunk, 4096),
        (chunk, 4095),
        (chunk + 1, 4096),
        (chunk - 1, 4096),
        (2 * chunk + 17, 5000),
        (2 * chunk, chunk as u32),
        (300_000, chunk as u32 + 1),
        (2 * chunk + 3, 3 * chunk as u32),
        (chunk + 5, 1),
    ] {
        let plain = data(len);
        let msg = seal(&plain, Suite::CommitKey, fl, &ctx(&[]), &key);
        assert_eq!(open(&msg, &key).unwrap(), plain, "len {len} frame {fl}");
    }
    for (len, fl, chunk) in [
        (10_000, 300, 1000),
        (9_000, 300, 900),
        (5, 300, 1),
        (0, 7, 3),
    ] {
        let plain = data(len);
        let mut out = Vec::new();
        let mut input = ReadAhead::new(std::io::Cursor::new(plain.clone()), chunk, 2);
        encrypt(
            &mut input,
            &mut out,
            EncryptRequest {
                suite: Suite::CommitKey,
                frame_length: fl,
                context: ctx(&[]),
                encrypted_data_keys: vec![edk()],
                data_key: &key,
                signer: None,
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(
            open(&out, &key).unwrap(),
            plain,
            "len {len} frame {fl} chunk {chunk}"
        );
        // Decrypted from chunks of the same size: frames and prefixes cut
        // anywhere, the header read through `Read` first.
        let mut input = ReadAhead::new(std::io::Cursor::new(out.clone()), chunk, 2);
        let parsed = read_header(&mut input, &Limits::default()).unwrap();
        let mut back = Vec::new();
        decrypt(&parsed, &key, &mut input, &mut back, &mut |_| {}).unwrap();
        assert_eq!(back, plain, "decrypt: len {len} frame {fl} chunk {chunk}");
        // A byte appended after the message is refused.
        let mut longer = out.clone();
        longer.push(0);
        let mut input = ReadAhead::new(std::io::Cursor::new(longer), chunk, 2);
        let parsed = read_header(&mut input, &Limits::default()).unwrap();
        assert!(matches!(
            decrypt(&parsed, &key, &mut input, &mut Vec::new(), &mut |_| {}),
            Err(EsdkError::TrailingData)
        ));
    }
}

#[test]
fn a_whole_number_of_frames_ends_with_a_full_final_frame() {
    let key = random_key();
    let plain = data(128);
    let one = seal(&plain, Suite::CommitKey, 64, &ctx(&[]), &key);
    let empty = seal(&[], Suite::CommitKey, 64, &ctx(&[]), &key);
    // Two frames: a regular one (4+12+64+16) and a full final one
    // (4+4+12+4+64+16); the empty message has an empty final frame.
    let empty_final = 4 + 4 + 12 + 4 + 16;
    assert_eq!(
        one.len() - (empty.len() - empty_final),
        (4 + 12 + 64 + 16) + (empty_final + 64)
    );
}

#[test]
fn the_wrong_data_key_fails_the_commitment() {
    let key = random_key();
    let msg = seal(b"secret", Suite::CommitKeyEcdsaP384, 4096, &ctx(&[]), &key);
    assert!(matches!(
        open(&msg, &random_key()),
        Err(EsdkError::Commitment)
    ));
}

#[test]
fn every_flipped_byte_and_every_truncation_fails() {
    let key = random_key();
    for suite in [Suite::CommitKey, Suite::CommitKeyEcdsaP384] {
        let msg = seal(&data(50), suite, 16, &ctx(&[("k", "v")]), &key);
        for i in 0..msg.len() {
            let mut bad = msg.clone();
            bad[i] ^= 0x01;
            // The encrypted data key too: the whole header is the header
            // tag's additional data.
            assert!(
                open(&bad, &key).is_err(),
                "suite {suite}: flipped byte {i} decrypted"
            );
        }
        for cut in 0..msg.len() {
            assert!(
                open(&msg[..cut], &key).is_err(),
                "suite {suite}: cut at {cut} decrypted"
            );
        }
        let mut longer = msg.clone();
        longer.push(0);
        assert!(matches!(open(&longer, &key), Err(EsdkError::TrailingData)));
    }
}

#[test]
fn swapped_frames_fail() {
    let key = random_key();
    let msg = seal(&data(48), Suite::CommitKey, 16, &ctx(&[]), &key);
    let header_len = {
        let mut input = &msg[..];
        read_header(&mut input, &Limits::default()).unwrap();
        msg.len() - input.len()
    };
    let frame = 4 + 12 + 16 + 16;
    let mut swapped = msg.clone();
    let (a, b) = (header_len, header_len + frame);
    let first = msg[a..a + frame].to_vec();
    swapped[a..a + frame].copy_from_slice(&msg[b..b + frame]);
    swapped[b..b + frame].copy_from_slice(&first);
    assert!(matches!(
        open(&swapped, &key),
        Err(EsdkError::FrameOrder {
            expected: 1,
            found: 2
        })
    ));
    // Same sequence numbers, swapped contents: the tags fail.
    let mut contents = msg.clone();
    contents[a + 4..a + frame].copy_from_slice(&msg[b + 4..b + frame]);
    contents[b + 4..b + frame].copy_from_slice(&msg[a + 4..a + frame]);
    assert!(matches!(
        open(&contents, &key),
        Err(EsdkError::FrameAuth(1))
    ));
}

#[test]
fn reserved_context_keys_and_bad_requests_are_refused() {
    assert!(message_context(&ctx(&[("aws-crypto-x", "1")]), None).is_err());
    let key = random_key();
    let bad = |suite: Suite, fl: u32, signer: Option<Signer>| {
        let context = message_context(&ctx(&[]), signer.as_ref()).unwrap();
        encrypt(
            &mut &b"x"[..],
            &mut Vec::new(),
            EncryptRequest {
                suite,
                frame_length: fl,
                context,
                encrypted_data_keys: vec![edk()],
                data_key: &key,
                signer,
            },
            &mut |_| {},
        )
    };
    assert!(bad(Suite::CommitKey, 0, None).is_err());
    assert!(bad(Suite::CommitKey, MAX_FRAME_LENGTH + 1, None).is_err());
    assert!(bad(Suite::CommitKeyEcdsaP384, 4096, None).is_err());
    assert!(bad(Suite::CommitKey, 4096, Some(Signer::generate().unwrap())).is_err());
    assert!(bad(
        Suite::LegacyHkdfSha384EcdsaP384,
        4096,
        Some(Signer::generate().unwrap())
    )
    .is_err());
    assert!(bad(Suite::CommitKey, 4096, None).is_ok());
}

#[test]
fn header_limits_are_enforced_before_decryption() {
    let key = random_key();
    let msg = seal(b"abc", Suite::CommitKey, 4096, &ctx(&[]), &key);
    let small = Limits {
        max_frame_length: 1024,
        ..Limits::default()
    };
    assert!(matches!(
        open_with(&msg, &key, &small),
        Err(EsdkError::Limit(_))
    ));
    let no_keys = Limits {
        max_encrypted_data_keys: 0,
        ..Limits::default()
    };
    assert!(matches!(
        open_with(&msg, &key, &no_keys),
        Err(EsdkError::Limit(_))
    ));
}

/// A version 1 message (suite 0x0178), built by hand: refused unless
/// non-committing suites are allowed, then decrypted.
#[test]
fn legacy_messages_need_the_flag() {
    let key = random_key();
    let suite = Suite::LegacyHkdfSha256;
    let message_id = [9u8; 16];
    let mut body = vec![1, 0x80];
    body.extend_from_slice(&suite.id().to_be_bytes());
    body.extend_from_slice(&message_id);
    body.extend_from_slice(&0u16.to_be_bytes()); // no context
    body.extend_from_slice(&1u16.to_be_bytes());
    for field in [&b"aws-kms"[..], b"arn", b"blob"] {
        body.extend_from_slice(&(field.len() as u16).to_be_bytes());
        body.extend_from_slice(field);
    }
    body.push(2);
    body.extend_from_slice(&[0, 0, 0, 0, 12]);
    body.extend_from_slice(&4096u32.to_be_bytes());
    let keys = suite.derive(&key, &message_id).unwrap();
    let aead = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &keys.content[..]).unwrap(),
    );
    let nonce = |iv: [u8; 12]| ring::aead::Nonce::assume_unique_for_key(iv);
    let tag = aead
        .seal_in_place_separate_tag(nonce([0; 12]), ring::aead::Aad::from(&body[..]), &mut [])
        .unwrap();
    let mut msg = body.clone();
    msg.extend_from_slice(&[0; 12]);
    msg.extend_from_slice(tag.as_ref());
    let mut content = b"legacy".to_vec();
    let mut aad = message_id.to_vec();
    aad.extend_from_slice(b"AWSKMSEncryptionClient Final Frame");
    aad.extend_from_slice(&1u32.to_be_bytes());
    aad.extend_from_slice(&6u64.to_be_bytes());
    let mut iv = [0u8; 12];
    iv[11] = 1;
    let tag = aead
        .seal_in_place_separate_tag(nonce(iv), ring::aead::Aad::from(&aad[..]), &mut content)
        .unwrap();
    msg.extend_from_slice(&[0xFF; 4]);
    msg.extend_from_slice(&1u32.to_be_bytes());
    msg.extend_from_slice(&iv);
    msg.extend_from_slice(&6u32.to_be_bytes());
    msg.extend_from_slice(&content);
    msg.extend_from_slice(tag.as_ref());
    assert!(matches!(
        open(&msg, &key),
        Err(EsdkError::NonCommitting(Suite::LegacyHkdfSha256))
    ));
    let allow = Limits {
        allow_non_committing: true,
        ..Limits::default()
    };
    assert_eq!(open_with(&msg, &key, &allow).unwrap().1, b"legacy");
}

fn context_strategy() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-z0-9é_-]{1,12}", "[ -~é]{0,16}", 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_messages_round_trip_and_no_single_byte_change_decrypts(
        len in 0usize..9000,
        frame_length in 1u32..5000,
        context in context_strategy(),
        signed in any::<bool>(),
        position in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let key = random_key();
        let suite = if signed { Suite::CommitKeyEcdsaP384 } else { Suite::CommitKey };
        let plain = data(len);
        let msg = seal(&plain, suite, frame_length, &context, &key);
        prop_assert_eq!(open(&msg, &key).unwrap(), plain);
        let mut bad = msg.clone();
        bad[position.index(msg.len())] ^= xor;
        prop_assert!(open(&bad, &key).is_err());
    }
}

/// A [`body::Chunks`] source that cuts its bytes by a schedule of sizes
/// (cycled) and checks the driver's use of it: every chunk handed back,
/// and never more than one held at a time (the chunk goes back before the
/// next is read, so an inline reader refills the same cache-warm buffer).
struct Scheduled<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    next: usize,
    held: usize,
    spare: Vec<zeroize::Zeroizing<Vec<u8>>>,
}

impl<'a> Scheduled<'a> {
    fn new(data: &'a [u8], sizes: &'a [usize]) -> Self {
        Scheduled {
            data,
            sizes,
            next: 0,
            held: 0,
            spare: Vec::new(),
        }
    }
}

impl body::Chunks for Scheduled<'_> {
    fn next_chunk(&mut self) -> std::io::Result<zeroize::Zeroizing<Vec<u8>>> {
        assert_eq!(self.held, 0, "a chunk is still held when the next is read");
        let n = self.sizes[self.next % self.sizes.len()].min(self.data.len());
        self.next += 1;
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.held += 1;
        Ok(buf)
    }
    fn recycle(&mut self, chunk: zeroize::Zeroizing<Vec<u8>>) {
        self.held -= 1;
        self.spare.push(chunk);
    }
}

/// Frames sealed and opened across every kind of chunk boundary: chunks
/// shorter than a frame, exactly a frame, a frame and one byte, several
/// frames, irregular; inputs empty, of one byte, a frame, a frame and one,
/// whole numbers of frames (a full final frame). The message is the same
/// shape (length) as the one made from a single slice and decrypts from
/// chunks cut anywhere (prefixes and tags included).
#[test]
fn frames_at_every_chunk_boundary_round_trip() {
    let key = random_key();
    for fl in [1usize, 7, 64, 4096] {
        let schedules: [Vec<usize>; 7] = [
            vec![1],
            vec![(fl - 1).max(1)],
            vec![fl],
            vec![fl + 1],
            vec![3 * fl],
            vec![2 * fl - 1, 1],
            vec![5, 3 * fl + 2, fl, 1],
        ];
        for len in [0, 1, fl - 1, fl, fl + 1, 2 * fl, 3 * fl + 5, 10 * fl] {
            let plain = data(len);
            let reference = seal(&plain, Suite::CommitKey, fl as u32, &ctx(&[]), &key);
            for sizes in &schedules {
                let what = format!("len {len} frame {fl} chunks {sizes:?}");
                let mut input = Scheduled::new(&plain, sizes);
                let mut msg = Vec::new();
                let mut reported = 0;
                encrypt(
                    &mut input,
                    &mut msg,
                    EncryptRequest {
                        suite: Suite::CommitKey,
                        frame_length: fl as u32,
                        context: ctx(&[]),
                        encrypted_data_keys: vec![edk()],
                        data_key: &key,
                        signer: None,
                    },
                    &mut |n| reported += n,
                )
                .unwrap();
                assert_eq!(input.held, 0, "{what}");
                assert_eq!(reported, len as u64, "{what}");
                assert_eq!(msg.len(), reference.len(), "{what}");
                assert_eq!(open(&msg, &key).unwrap(), plain, "{what}");

                let mut rest = &msg[..];
                let parsed = read_header(&mut rest, &Limits::default()).unwrap();
                let mut input = Scheduled::new(rest, sizes);
                let mut back = Vec::new();
                decrypt(&parsed, &key, &mut input, &mut back, &mut |_| {}).unwrap();
                assert_eq!(input.held, 0, "decrypt: {what}");
                assert_eq!(back, plain, "decrypt: {what}");
                // Cut one byte short, or one byte long: refused.
                let mut input = Scheduled::new(&rest[..rest.len() - 1], sizes);
                assert!(decrypt(&parsed, &key, &mut input, &mut Vec::new(), &mut |_| {}).is_err());
                let mut longer = rest.to_vec();
                longer.push(0);
                let mut input = Scheduled::new(&longer, sizes);
                assert!(matches!(
                    decrypt(&parsed, &key, &mut input, &mut Vec::new(), &mut |_| {}),
                    Err(EsdkError::TrailingData)
                ));
            }
        }
    }
}

/// The CLI's reader for regular files ([`ReadAhead::inline`]) with a
/// source that returns short reads: the chunks are filled whole, and empty,
/// exact and odd sizes round-trip through it both ways.
#[test]
fn inline_reader_round_trips_with_short_reads() {
    /// Returns at most 777 bytes per read.
    struct Trickle(std::io::Cursor<Vec<u8>>);
    impl std::io::Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(777);
            self.0.read(&mut buf[..n])
        }
    }
    let key = random_key();
    let chunk = 8192;
    for len in [0, 1, 4096, 8192, 8193, 3 * 8192, 50_000] {
        let plain = data(len);
        let mut msg = Vec::new();
        encrypt(
            &mut ReadAhead::inline(Trickle(std::io::Cursor::new(plain.clone())), chunk),
            &mut msg,
            EncryptRequest {
                suite: Suite::CommitKey,
                frame_length: 4096,
                context: ctx(&[]),
                encrypted_data_keys: vec![edk()],
                data_key: &key,
                signer: None,
            },
            &mut |_| {},
        )
        .unwrap();
        let reference = seal(&plain, Suite::CommitKey, 4096, &ctx(&[]), &key);
        assert_eq!(msg.len(), reference.len(), "len {len}");
        let mut input = ReadAhead::inline(Trickle(std::io::Cursor::new(msg)), chunk);
        let parsed = read_header(&mut input, &Limits::default()).unwrap();
        let mut back = Vec::new();
        decrypt(&parsed, &key, &mut input, &mut back, &mut |_| {}).unwrap();
        assert_eq!(back, plain, "len {len}");
    }
}

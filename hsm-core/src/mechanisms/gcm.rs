//! AES-GCM (NIST SP 800-38D) for the PKCS#11 parameters aws-lc-rs does not
//! take: IVs of 1 to 256 bytes other than 12 (the pre-counter block J0 is
//! then GHASH of the IV) and tags of 12 to 16 bytes. Composed from
//! RustCrypto's AES block cipher, CTR with a 32-bit big-endian counter
//! (GCM's inc32) and GHASH; the 12-byte IV / 16-byte tag case stays on
//! aws-lc-rs. Known-answer tests below (McGrew & Viega test cases 5 and 6,
//! 8- and 60-byte IVs) and agreement with aws-lc-rs on 12-byte IVs check
//! the composition; the module's tests compare with SoftHSM2 (OpenSSL).

use aes::cipher::consts::U16;
use aes::cipher::{
    generic_array::GenericArray, BlockCipher, BlockEncrypt, BlockSizeUser, KeyInit, KeyIvInit,
    StreamCipher,
};
use ghash::universal_hash::UniversalHash;
use ghash::GHash;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Shortest and longest IV, in bytes.
pub const IV_LEN: std::ops::RangeInclusive<usize> = 1..=256;
/// Shortest and longest tag, in bytes (96 to 128 bits).
pub const TAG_LEN: std::ops::RangeInclusive<usize> = 12..=16;

type Block = GenericArray<u8, U16>;

/// AES-128, -192 or -256 as the block cipher under GCM.
trait GcmCipher: BlockCipher + BlockEncrypt + KeyInit + BlockSizeUser<BlockSize = U16> {}
impl<T: BlockCipher + BlockEncrypt + KeyInit + BlockSizeUser<BlockSize = U16>> GcmCipher for T {}

fn check(iv: &[u8], tag_len: usize) -> Result<()> {
    if !IV_LEN.contains(&iv.len()) {
        return Err(Error::validation("the GCM IV must be 1 to 256 bytes"));
    }
    if !TAG_LEN.contains(&tag_len) {
        return Err(Error::validation("the GCM tag must be 12 to 16 bytes"));
    }
    Ok(())
}

/// GCM's state for one key and IV: the tag mask E(K, J0), GHASH under H,
/// and the keystream starting at inc32(J0).
struct Gcm<C: GcmCipher> {
    tag_mask: Block,
    ghash: GHash,
    ctr: ctr::Ctr32BE<C>,
}

impl<C: GcmCipher> Gcm<C> {
    fn new(key: &[u8], iv: &[u8]) -> Result<Self> {
        let cipher = C::new_from_slice(key).map_err(|_| Error::validation("bad AES key"))?;
        let mut h = Block::default();
        cipher.encrypt_block(&mut h);
        let ghash = GHash::new(&h);
        let mut j0 = Block::default();
        if iv.len() == 12 {
            j0[..12].copy_from_slice(iv);
            j0[15] = 1;
        } else {
            let mut g = ghash.clone();
            g.update_padded(iv);
            let mut lengths = Block::default();
            lengths[8..].copy_from_slice(&((iv.len() as u64) * 8).to_be_bytes());
            g.update(&[lengths]);
            j0 = g.finalize();
        }
        let mut tag_mask = j0;
        cipher.encrypt_block(&mut tag_mask);
        let mut first = j0;
        let counter = u32::from_be_bytes([j0[12], j0[13], j0[14], j0[15]]).wrapping_add(1);
        first[12..].copy_from_slice(&counter.to_be_bytes());
        let ctr = ctr::Ctr32BE::<C>::new_from_slices(key, &first)
            .map_err(|_| Error::validation("bad AES key"))?;
        Ok(Gcm {
            tag_mask,
            ghash,
            ctr,
        })
    }

    /// The full 16-byte tag over `aad` and the ciphertext.
    fn tag(&self, aad: &[u8], ciphertext: &[u8]) -> Block {
        let mut ghash = self.ghash.clone();
        ghash.update_padded(aad);
        ghash.update_padded(ciphertext);
        let mut lengths = Block::default();
        lengths[..8].copy_from_slice(&((aad.len() as u64) * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&((ciphertext.len() as u64) * 8).to_be_bytes());
        ghash.update(&[lengths]);
        let mut tag = ghash.finalize();
        for (t, m) in tag.iter_mut().zip(self.tag_mask.iter()) {
            *t ^= m;
        }
        tag
    }
}

fn seal_with<C: GcmCipher>(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
    tag_len: usize,
) -> Result<Vec<u8>> {
    let mut gcm = Gcm::<C>::new(key, iv)?;
    let mut out = Vec::with_capacity(data.len() + tag_len);
    out.extend_from_slice(data);
    gcm.ctr.apply_keystream(&mut out);
    let tag = gcm.tag(aad, &out);
    out.extend_from_slice(&tag[..tag_len]);
    Ok(out)
}

fn open_with<C: GcmCipher>(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
    tag_len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let failed = || Error::InvalidCiphertext("AES-GCM decryption failed".into());
    let split = data.len().checked_sub(tag_len).ok_or_else(failed)?;
    let (ciphertext, tag) = data.split_at(split);
    let mut gcm = Gcm::<C>::new(key, iv)?;
    let expected = gcm.tag(aad, ciphertext);
    aws_lc_rs::constant_time::verify_slices_are_equal(&expected[..tag_len], tag)
        .map_err(|_| failed())?;
    let mut out = Zeroizing::new(ciphertext.to_vec());
    gcm.ctr.apply_keystream(&mut out);
    Ok(out)
}

/// AES-GCM encryption: ciphertext || the first `tag_len` bytes of the tag.
pub fn seal(key: &[u8], iv: &[u8], aad: &[u8], data: &[u8], tag_len: usize) -> Result<Vec<u8>> {
    check(iv, tag_len)?;
    match key.len() {
        16 => seal_with::<aes::Aes128>(key, iv, aad, data, tag_len),
        24 => seal_with::<aes::Aes192>(key, iv, aad, data, tag_len),
        32 => seal_with::<aes::Aes256>(key, iv, aad, data, tag_len),
        _ => Err(Error::validation("an AES key is 16, 24 or 32 bytes")),
    }
}

/// AES-GCM decryption of ciphertext || tag (`tag_len` bytes); the
/// plaintext comes back only when the tag verifies (in constant time).
pub fn open(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
    tag_len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    check(iv, tag_len)?;
    match key.len() {
        16 => open_with::<aes::Aes128>(key, iv, aad, data, tag_len),
        24 => open_with::<aes::Aes192>(key, iv, aad, data, tag_len),
        32 => open_with::<aes::Aes256>(key, iv, aad, data, tag_len),
        _ => Err(Error::validation("an AES key is 16, 24 or 32 bytes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const KEY: &str = "feffe9928665731c6d6a8f9467308308";
    const PT: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    const AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";

    #[test]
    fn mcgrew_viega_test_cases_5_and_6_short_and_long_ivs() {
        // Test case 5: a 64-bit IV.
        let iv = hex("cafebabefacedbad");
        let ct = seal(&hex(KEY), &iv, &hex(AAD), &hex(PT), 16).unwrap();
        let (c, t) = ct.split_at(ct.len() - 16);
        assert_eq!(c, hex("61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598"));
        assert_eq!(t, hex("3612d2e79e3b0785561be14aaca2fccb"));
        assert_eq!(
            &open(&hex(KEY), &iv, &hex(AAD), &ct, 16).unwrap()[..],
            &hex(PT)[..]
        );

        // Test case 6: a 480-bit IV.
        let iv = hex("9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b");
        let ct = seal(&hex(KEY), &iv, &hex(AAD), &hex(PT), 16).unwrap();
        let (c, t) = ct.split_at(ct.len() - 16);
        assert_eq!(c, hex("8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca701e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5"));
        assert_eq!(t, hex("619cc5aefffe0bfa462af43c1699d050"));
    }

    #[test]
    fn twelve_byte_ivs_agree_with_aws_lc_and_short_tags_are_prefixes() {
        use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
        let key = [7u8; 32];
        let iv = [3u8; 12];
        let data = b"thirty-seven bytes of plaintext data!";
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
        let mut expected = data.to_vec();
        k.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(b"a"),
            &mut expected,
        )
        .unwrap();
        assert_eq!(seal(&key, &iv, b"a", data, 16).unwrap(), expected);
        for tag_len in 12..=16 {
            let short = seal(&key, &iv, b"a", data, tag_len).unwrap();
            assert_eq!(short[..], expected[..data.len() + tag_len]);
            assert_eq!(&open(&key, &iv, b"a", &short, tag_len).unwrap()[..], data);
            // Any flipped bit, in the tag or the data, is refused.
            for i in [0, data.len(), short.len() - 1] {
                let mut bad = short.clone();
                bad[i] ^= 1;
                assert!(matches!(
                    open(&key, &iv, b"a", &bad, tag_len),
                    Err(Error::InvalidCiphertext(_))
                ));
            }
        }
    }

    #[test]
    fn out_of_range_parameters_and_short_input_are_refused() {
        let key = [1u8; 16];
        assert!(matches!(
            seal(&key, &[], b"", b"x", 16),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            seal(&key, &[0; 257], b"", b"x", 16),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            seal(&key, &[0; 8], b"", b"x", 11),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            seal(&key, &[0; 8], b"", b"x", 17),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            open(&key, &[0; 8], b"", &[0; 11], 12),
            Err(Error::InvalidCiphertext(_))
        ));
        // An empty plaintext still carries its tag.
        let sealed = seal(&key, &[0; 1], b"", b"", 12).unwrap();
        assert_eq!(sealed.len(), 12);
        assert!(open(&key, &[0; 1], b"", &sealed, 12).unwrap().is_empty());
    }
}

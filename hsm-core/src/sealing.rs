//! Sealing: the passphrase-derived key-encryption key, the root key, and the
//! wrapping of every key version's material under the root key.
//!
//! * KEK = Argon2id(passphrase, 32-byte random salt, stored parameters).
//! * The 256-bit root key is stored only as AES-256-GCM(KEK) with associated
//!   data binding the KDF parameters and salt.
//! * Each key version's material is stored as AES-256-GCM(root key) with
//!   associated data binding the key id, version and key spec, so a row
//!   copied onto another key or version fails to unwrap.
//!
//! Wrapping uses a random 96-bit nonce: a store wraps one value per key
//! version and per passphrase change, far below the 2^32 random-nonce bound.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secmem::LockedBytes;

/// Length of the root key, the KEK and symmetric key versions.
pub(crate) const KEY_LEN: usize = 32;
/// Length of the Argon2id salt.
pub(crate) const SALT_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// A 256-bit secret key (root key, KEK) on locked pages left out of core
/// dumps ([`crate::secmem`]), wiped on drop.
pub(crate) struct SecretKey(LockedBytes);

impl SecretKey {
    /// A key filled in place by `fill`.
    fn with(fill: impl FnOnce(&mut [u8]) -> Result<()>) -> Result<SecretKey> {
        LockedBytes::with(KEY_LEN, fill).map(SecretKey)
    }
}

impl std::ops::Deref for SecretKey {
    type Target = [u8; KEY_LEN];
    fn deref(&self) -> &[u8; KEY_LEN] {
        // LockedBytes::with(KEY_LEN, ..) holds exactly KEY_LEN bytes.
        self.0[..]
            .try_into()
            .expect("a SecretKey holds KEY_LEN bytes")
    }
}

/// Argon2id parameters for deriving the key-encryption key from the passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB (default 65536 = 64 MiB).
    pub memory_kib: u32,
    /// Iterations (default 3).
    pub iterations: u32,
    /// Lanes (default 1).
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// The least Argon2id memory accepted for a new sealing, in KiB (8 MiB).
    pub const MIN_MEMORY_KIB: u32 = 8 * 1024;
    /// The most Argon2id memory accepted, in KiB (4 GiB).
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// The most Argon2id iterations accepted.
    pub const MAX_ITERATIONS: u32 = 100;
    /// The most Argon2id lanes accepted.
    pub const MAX_PARALLELISM: u32 = 64;
    /// The cheapest parameters accepted (8 MiB, one pass, one lane): for
    /// tests, benchmarks and throwaway fixtures only, never for a store
    /// whose passphrase has to resist guessing.
    pub const MINIMUM: KdfParams = KdfParams {
        memory_kib: Self::MIN_MEMORY_KIB,
        iterations: 1,
        parallelism: 1,
    };

    /// Checks the parameters of a new sealing (init, passphrase change):
    /// memory 8 MiB to 4 GiB, iterations 1 to 100, lanes 1 to 64. A
    /// `ValidationException` names the parameter, its bounds and the value.
    pub fn validate(&self) -> Result<()> {
        self.check_upper()?;
        if self.memory_kib < Self::MIN_MEMORY_KIB {
            return Err(Error::validation(format!(
                "kdf_memory_kib must be {} to {} (8 MiB to 4 GiB); got {}",
                Self::MIN_MEMORY_KIB,
                Self::MAX_MEMORY_KIB,
                self.memory_kib
            )));
        }
        Ok(())
    }

    /// The bounds every derivation obeys, also when the parameters come
    /// from a store (made before [`KdfParams::validate`] existed, possibly
    /// with less memory): nothing can make Argon2id allocate more than
    /// 4 GiB or run more than 100 passes.
    fn check_upper(&self) -> Result<()> {
        let check = |name: &str, value: u32, min: u32, max: u32| {
            if value < min || value > max {
                return Err(Error::validation(format!(
                    "{name} must be {min} to {max}; got {value}"
                )));
            }
            Ok(())
        };
        check("kdf_memory_kib", self.memory_kib, 8, Self::MAX_MEMORY_KIB)?;
        check("kdf_iterations", self.iterations, 1, Self::MAX_ITERATIONS)?;
        check(
            "kdf_parallelism",
            self.parallelism,
            1,
            Self::MAX_PARALLELISM,
        )?;
        // Argon2 needs 8 KiB per lane.
        if self.memory_kib < 8 * self.parallelism {
            return Err(Error::validation(format!(
                "kdf_memory_kib must be at least 8 per lane ({} for {} lanes); got {}",
                8 * self.parallelism,
                self.parallelism,
                self.memory_kib
            )));
        }
        Ok(())
    }

    fn argon2(&self) -> Result<argon2::Argon2<'static>> {
        self.check_upper()?;
        let params = argon2::Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|e| Error::validation(format!("invalid Argon2id parameters: {e}")))?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }
}

/// Fills `out` from the operating system's CSPRNG.
pub(crate) fn random_fill(out: &mut [u8]) -> Result<()> {
    SystemRandom::new()
        .fill(out)
        .map_err(|_| Error::Internal("the system random number generator failed".into()))
}

/// A fresh random 256-bit key.
pub(crate) fn random_key() -> Result<SecretKey> {
    SecretKey::with(random_fill)
}

/// Derives the key-encryption key from the passphrase.
///
/// Argon2id's memory is allocated here, fallibly, after checking that the
/// machine can give it (see [`memory_for`]): asking for more than there is
/// is a clear error, not an abort or the OOM killer. The memory is wiped
/// after use. The KEK is returned only once the start-up self-tests passed
/// ([`crate::selftest::run`]; started early by the binaries, they run
/// meanwhile on another thread).
pub(crate) fn derive_kek(
    passphrase: &SecretString,
    salt: &[u8],
    params: &KdfParams,
) -> Result<SecretKey> {
    let argon2 = params.argon2()?;
    let mut blocks = memory_for(params, available_memory())?;
    let kek = SecretKey::with(|kek| {
        argon2
            .hash_password_into_with_memory(
                passphrase.expose_secret().as_bytes(),
                salt,
                kek,
                &mut blocks[..],
            )
            .map_err(|e| Error::validation(format!("cannot derive the sealing key: {e}")))
    });
    blocks.iter_mut().for_each(zeroize::Zeroize::zeroize);
    drop(blocks);
    let kek = kek?;
    crate::selftest::run()?;
    Ok(kek)
}

/// Argon2id's working memory for `params` (one 1 KiB block per KiB),
/// allocated without aborting: refused when it exceeds `available` bytes
/// (what the machine can give now, see [`available_memory`]) or when the
/// allocation itself fails (an address-space limit, `ulimit -v`).
fn memory_for(params: &KdfParams, available: Option<u64>) -> Result<Vec<argon2::Block>> {
    let blocks = params.memory_kib as usize;
    let needed = u64::from(params.memory_kib) * 1024;
    let refuse = |what: String| {
        Error::validation(format!(
            "kdf_memory_kib={} needs {} MiB of memory for Argon2id, but {what}; \
             free memory, or choose a smaller --kdf-memory-kib for a new store \
             (an existing store keeps the parameters it was sealed with)",
            params.memory_kib,
            needed.div_ceil(1024 * 1024),
        ))
    };
    if let Some(available) = available {
        if needed > available {
            return Err(refuse(format!(
                "only {} MiB are available",
                available / (1024 * 1024)
            )));
        }
    }
    let mut memory = Vec::new();
    memory
        .try_reserve_exact(blocks)
        .map_err(|_| refuse("the allocation was refused (address-space limit?)".into()))?;
    memory.resize(blocks, argon2::Block::default());
    Ok(memory)
}

/// Bytes of memory this process can use now without swapping or meeting
/// the OOM killer: the kernel's MemAvailable, lowered to the room left
/// under a cgroup v2 memory limit. `None` when neither can be read.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let system = meminfo.as_deref().and_then(|text| {
        text.lines()
            .find_map(|line| line.strip_prefix("MemAvailable:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    });
    let read = |name: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{name}"))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
    };
    // Only the process's own cgroup when it is the root of the mounted
    // hierarchy (containers); "max" does not parse: no limit.
    let cgroup = match (read("memory.max"), read("memory.current")) {
        (Some(max), Some(current)) => Some(max.saturating_sub(current)),
        _ => None,
    };
    match (system, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The associated data that binds the root key to its KDF parameters.
pub(crate) fn root_key_aad(params: &KdfParams, salt: &[u8]) -> Vec<u8> {
    let mut aad = b"tinfoil/v1/root-key".to_vec();
    for n in [params.memory_kib, params.iterations, params.parallelism] {
        aad.extend_from_slice(&n.to_be_bytes());
    }
    aad.extend_from_slice(salt);
    aad
}

/// The associated data that binds a key version's material to its place.
pub(crate) fn material_aad(key_id: &[u8; 16], version: u32, key_spec: &str) -> Vec<u8> {
    let mut aad = b"tinfoil/v1/key-material".to_vec();
    aad.extend_from_slice(key_id);
    aad.extend_from_slice(&version.to_be_bytes());
    aad.push(key_spec.len() as u8);
    aad.extend_from_slice(key_spec.as_bytes());
    aad
}

fn aead_key(key: &[u8; KEY_LEN]) -> LessSafeKey {
    // A key of the right length is the only precondition of UnboundKey::new.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("AES-256 key length"))
}

/// Wraps `plaintext` under `key`: nonce ‖ ciphertext ‖ tag.
pub(crate) fn wrap(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    random_fill(&mut nonce)?;
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = aead_key(key)
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| Error::Internal("wrapping failed".into()))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Unwraps what [`wrap`] made; `None` when the key, data or binding is wrong.
pub(crate) fn unwrap(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    wrapped: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if wrapped.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&wrapped[..NONCE_LEN]).ok()?;
    let mut buffer = Zeroizing::new(wrapped[NONCE_LEN..].to_vec());
    let plain_len = aead_key(key)
        .open_in_place(nonce, Aad::from(aad), buffer.as_mut_slice())
        .ok()?
        .len();
    buffer.truncate(plain_len);
    Some(buffer)
}

/// Unwraps a 256-bit key (the root key).
pub(crate) fn unwrap_key(key: &[u8; KEY_LEN], aad: &[u8], wrapped: &[u8]) -> Option<SecretKey> {
    let bytes = unwrap(key, aad, wrapped)?;
    if bytes.len() != KEY_LEN {
        return None;
    }
    SecretKey::with(|key| {
        key.copy_from_slice(&bytes);
        Ok(())
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trips_and_binds_aad() {
        let key = random_key().unwrap();
        let wrapped = wrap(&key, b"aad-1", b"secret bytes").unwrap();
        assert_eq!(
            unwrap(&key, b"aad-1", &wrapped).unwrap().as_slice(),
            b"secret bytes"
        );
        assert!(unwrap(&key, b"aad-2", &wrapped).is_none());
        let other = random_key().unwrap();
        assert!(unwrap(&other, b"aad-1", &wrapped).is_none());
        for cut in 0..wrapped.len() {
            assert!(unwrap(&key, b"aad-1", &wrapped[..cut]).is_none());
        }
    }

    #[test]
    fn material_aad_differs_by_key_version_and_spec() {
        let a = material_aad(&[1; 16], 1, "SYMMETRIC_DEFAULT");
        assert_ne!(a, material_aad(&[2; 16], 1, "SYMMETRIC_DEFAULT"));
        assert_ne!(a, material_aad(&[1; 16], 2, "SYMMETRIC_DEFAULT"));
        assert_ne!(a, material_aad(&[1; 16], 1, "HMAC_256"));
    }

    #[test]
    fn kdf_bounds_are_enforced_with_named_messages() {
        let ok = KdfParams {
            memory_kib: KdfParams::MIN_MEMORY_KIB,
            iterations: 1,
            parallelism: 1,
        };
        ok.validate().unwrap();
        KdfParams {
            memory_kib: KdfParams::MAX_MEMORY_KIB,
            iterations: KdfParams::MAX_ITERATIONS,
            parallelism: KdfParams::MAX_PARALLELISM,
        }
        .validate()
        .unwrap();
        let cases = [
            (u32::MAX, 3, 1, "kdf_memory_kib"),
            (KdfParams::MAX_MEMORY_KIB + 1, 3, 1, "kdf_memory_kib"),
            (KdfParams::MIN_MEMORY_KIB - 1, 3, 1, "kdf_memory_kib"),
            (0, 3, 1, "kdf_memory_kib"),
            (65536, u32::MAX, 1, "kdf_iterations"),
            (65536, 101, 1, "kdf_iterations"),
            (65536, 0, 1, "kdf_iterations"),
            (65536, 3, 0, "kdf_parallelism"),
            (65536, 3, 65, "kdf_parallelism"),
            (65536, 3, u32::MAX, "kdf_parallelism"),
        ];
        for (memory_kib, iterations, parallelism, name) in cases {
            let params = KdfParams {
                memory_kib,
                iterations,
                parallelism,
            };
            let err = params.validate().unwrap_err();
            assert_eq!(err.kms_name(), "ValidationException");
            assert!(err.to_string().contains(name), "{err}");
            // A derivation refuses before allocating anything.
            let err = derive_kek(&SecretString::from("p"), &[0; SALT_LEN], &params);
            if (8..KdfParams::MIN_MEMORY_KIB).contains(&memory_kib) {
                continue; // an old store's small memory still derives
            }
            assert!(err.is_err(), "{params:?} derived");
        }
    }

    #[test]
    fn kdf_memory_beyond_what_the_machine_gives_is_refused_clearly() {
        let params = KdfParams {
            memory_kib: 64 * 1024,
            iterations: 1,
            parallelism: 1,
        };
        let err = memory_for(&params, Some(32 * 1024 * 1024))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("kdf_memory_kib=65536 needs 64 MiB") && err.contains("only 32 MiB"),
            "{err}"
        );
        assert_eq!(
            memory_for(&params, Some(65 * 1024 * 1024)).unwrap().len(),
            64 * 1024
        );
        // Unknown availability: the allocation decides.
        assert_eq!(memory_for(&params, None).unwrap().len(), 64 * 1024);
        assert!(available_memory().is_some_and(|bytes| bytes > 0));
    }

    #[test]
    fn kek_depends_on_passphrase_and_salt() {
        let params = KdfParams {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        };
        let pass = SecretString::from("correct horse");
        let a = derive_kek(&pass, &[1; SALT_LEN], &params).unwrap();
        assert_eq!(*a, *derive_kek(&pass, &[1; SALT_LEN], &params).unwrap());
        assert_ne!(*a, *derive_kek(&pass, &[2; SALT_LEN], &params).unwrap());
        let wrong = SecretString::from("battery staple");
        assert_ne!(*a, *derive_kek(&wrong, &[1; SALT_LEN], &params).unwrap());
    }
}

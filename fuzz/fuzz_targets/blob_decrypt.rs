//! The ciphertext blob parser and Decrypt/ReEncrypt on attacker bytes,
//! through the gate of a real store. Half the runs splice the input over a
//! genuine blob so the header parses and the AES-GCM path is reached.
//! Property: anything that decrypts is the one genuine blob under its own
//! context, giving back its plaintext.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Mutex;

use hsm_core::CreateKeyRequest;
use libfuzzer_sys::fuzz_target;
use tinfoil_fuzz::{root, Store};

const PLAINTEXT: &[u8] = b"the genuine plaintext";

struct Fixture {
    store: Store,
    key_id: String,
    blob: Vec<u8>,
    context: BTreeMap<String, String>,
}

fn fixture() -> Fixture {
    let store = Store::new();
    let caller = root();
    let gate = store.hsm.gate(&caller);
    let key = gate
        .create_key(CreateKeyRequest::default())
        .expect("create key");
    let context = BTreeMap::from([("purpose".to_string(), "fuzz".to_string())]);
    let blob = gate
        .encrypt(&key.key_id, PLAINTEXT, &context, None)
        .expect("encrypt")
        .ciphertext_blob;
    Fixture {
        key_id: key.key_id,
        blob,
        context,
        store,
    }
}

static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = FIXTURE.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_mut().is_none_or(|f| f.store.worn_out()) {
        *guard = Some(fixture());
    }
    let f = guard.as_ref().expect("fixture");
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Input: mode, then (optionally) a context split off at the first 0xff.
    let (body, context) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) if mode & 4 != 0 => {
            let text = String::from_utf8_lossy(&rest[i + 1..]).into_owned();
            let ctx = match text.split_once('=') {
                Some((k, v)) => BTreeMap::from([(k.to_string(), v.to_string())]),
                None => BTreeMap::new(),
            };
            (&rest[..i], ctx)
        }
        _ => (rest, f.context.clone()),
    };
    let blob = if mode & 1 == 0 {
        body.to_vec()
    } else {
        // Splice: body[0] is an offset into the genuine blob, the rest
        // overwrites from there (and may extend or, with mode & 2, truncate).
        let mut blob = f.blob.clone();
        if let Some((&at, patch)) = body.split_first() {
            let at = (at as usize) % blob.len();
            for (i, b) in patch.iter().enumerate() {
                match blob.get_mut(at + i) {
                    Some(slot) => *slot = *b,
                    None => blob.push(*b),
                }
            }
            if mode & 2 != 0 {
                blob.truncate(at + patch.len());
            }
        }
        blob
    };
    let caller = root();
    let gate = f.store.hsm.gate(&caller);
    let key_id = (mode & 8 != 0).then_some(f.key_id.as_str());
    if let Ok(out) = gate.decrypt(&blob, &context, key_id, None) {
        assert_eq!(blob, f.blob, "a blob that was never made decrypted");
        assert_eq!(context, f.context, "decrypted under another context");
        assert_eq!(&out.plaintext[..], PLAINTEXT);
    }
    if mode & 16 != 0 {
        if let Ok(out) = gate.re_encrypt(&blob, &context, key_id, &f.key_id, &context) {
            assert_eq!(blob, f.blob, "a blob that was never made re-encrypted");
            assert!(!out.ciphertext_blob.is_empty());
        }
    }
});

//! PKCS#11 attribute templates through the module's safe layer: any
//! template (any types, any value lengths up to the limits) is checked
//! without panicking, and what is accepted as a data object is consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinfoil_pkcs11::attrs;

/// A template from bytes: per attribute, 2 bytes of type (low byte, plus
/// one "vendor/high" byte), 1 byte of length, then the value.
fn template(mut data: &[u8]) -> attrs::Template {
    let mut out = Vec::new();
    while data.len() >= 3 && out.len() <= attrs::MAX_TEMPLATE_LEN + 1 {
        let high = data[1] as cryptoki_sys::CK_ATTRIBUTE_TYPE;
        let t = (data[0] as cryptoki_sys::CK_ATTRIBUTE_TYPE)
            | if high & 0x80 != 0 { 0x8000_0000 } else { (high & 0x7f) << 8 };
        let len = (data[2] as usize).min(data.len() - 3);
        out.push((t, data[3..3 + len].to_vec()));
        data = &data[3 + len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let template = template(data);
    let _ = attrs::check_template(&template);
    if let Ok(object) = attrs::new_data_object(&template) {
        // What was accepted survives the storage encoding unchanged.
        let stored = attrs::encode(&object);
        assert_eq!(attrs::decode(&stored).ok().as_ref(), Some(&object));
    }
    for (t, v) in &template {
        let _ = attrs::as_ulong(v);
        let _ = attrs::as_bool(v);
        if *t == cryptoki_sys::CKA_ALLOWED_MECHANISMS {
            let _ = attrs::check_mechanism_list(v);
        }
        let _ = attrs::check_date(v);
    }
});

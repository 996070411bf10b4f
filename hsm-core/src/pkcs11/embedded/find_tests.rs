//! The indexed search of a token's objects gives what a filter of the
//! token's whole set gave, on a token mixing object rows, KMS keys (one
//! pending deletion, one described by a row) and keys elsewhere; rows
//! written before the search columns existed are found after the store
//! reopens. Run on both engines by the store matrix (`token_search`).

use std::sync::Arc;

use cryptoki_sys::*;

use super::EmbeddedBackend;
use crate::outputs::CreateKeyRequest;
use crate::pkcs11::attrs::{bbool, ulong};
use crate::pkcs11::{Attributes, Backend, KeyHandle};
use crate::store::engine::vals;
use crate::{Hsm, KeySpec, KeyUsage};

type Template = Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>;

fn data(label: &str, id: &[u8]) -> Attributes {
    let mut a = Attributes::new();
    a.insert(CKA_CLASS, ulong(CKO_DATA));
    a.insert(CKA_TOKEN, bbool(true));
    a.insert(CKA_PRIVATE, bbool(false));
    a.insert(CKA_LABEL, label.as_bytes().to_vec());
    a.insert(CKA_ID, id.to_vec());
    a
}

fn key(hsm: &Hsm, spec: KeySpec, usage: KeyUsage, token: Option<&str>, desc: &str) -> String {
    hsm.create_key(CreateKeyRequest {
        key_spec: Some(spec),
        key_usage: Some(usage),
        token: token.map(str::to_string),
        description: desc.to_string(),
        ..Default::default()
    })
    .unwrap()
    .key_id
}

/// Sorted ids and attributes of what a search found.
fn found(objects: Vec<crate::pkcs11::StoredObject>) -> Vec<(String, Attributes)> {
    let mut v: Vec<_> = objects.into_iter().map(|o| (o.id, o.attrs)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn ids(objects: &[(String, Attributes)]) -> Vec<&str> {
    objects.iter().map(|(id, _)| id.as_str()).collect()
}

/// The case: `hsm` a fresh store; `reopen` opens it again once `hsm` and
/// everything holding it are dropped.
pub(crate) fn token_search(hsm: Hsm, reopen: &dyn Fn() -> Hsm) {
    let hsm = Arc::new(hsm);
    let backend = EmbeddedBackend::over_hsm(hsm.clone());
    let serial = backend.init_token(None, "tok", b"so-pin-1").unwrap();
    let aes = key(
        &hsm,
        KeySpec::SymmetricDefault,
        KeyUsage::EncryptDecrypt,
        Some("tok"),
        "d-aes",
    );
    hsm.create_alias("alias/app-aes", &aes).unwrap();
    let signer = key(
        &hsm,
        KeySpec::EccNistP256,
        KeyUsage::SignVerify,
        Some("tok"),
        "signer",
    );
    let doomed = key(
        &hsm,
        KeySpec::EccNistP256,
        KeyUsage::SignVerify,
        Some("tok"),
        "doomed",
    );
    let described = key(
        &hsm,
        KeySpec::Hmac256,
        KeyUsage::GenerateVerifyMac,
        Some("tok"),
        "hm",
    );
    let elsewhere = key(
        &hsm,
        KeySpec::SymmetricDefault,
        KeyUsage::EncryptDecrypt,
        None,
        "signer",
    );
    // Rows: two data objects, one describing a key, one naming the key
    // about to be deleted.
    backend
        .store_object(&serial, &data("data-1", b"abc"), None)
        .unwrap();
    backend
        .store_object(&serial, &data("data-2", b"abc"), None)
        .unwrap();
    let mut row_key = data("row-described", described.as_bytes());
    row_key.insert(CKA_CLASS, ulong(CKO_SECRET_KEY));
    row_key.insert(CKA_KEY_TYPE, ulong(CKK_GENERIC_SECRET));
    backend
        .store_object(
            &serial,
            &row_key,
            Some(&KeyHandle::Stored(described.clone())),
        )
        .unwrap();
    let mut row_doomed = data("doomed-row", doomed.as_bytes());
    row_doomed.insert(CKA_CLASS, ulong(CKO_PRIVATE_KEY));
    backend
        .store_object(
            &serial,
            &row_doomed,
            Some(&KeyHandle::Stored(doomed.clone())),
        )
        .unwrap();
    hsm.schedule_key_deletion(&doomed, Some(7)).unwrap();

    let label = |l: &str| -> Template { vec![(CKA_LABEL, l.as_bytes().to_vec())] };
    let id = |i: &str| -> Template { vec![(CKA_ID, i.as_bytes().to_vec())] };
    let class = |c: CK_OBJECT_CLASS| -> Template { vec![(CKA_CLASS, ulong(c))] };
    let templates: Vec<Template> = vec![
        Vec::new(),
        label("app-aes"),
        label("d-aes"),
        label("signer"),
        label("data-1"),
        label("row-described"),
        label("hm"),
        label("doomed"),
        label("doomed-row"),
        label("nothing"),
        label(""),
        id(&aes),
        id(&signer),
        id(&doomed),
        id(&described),
        id(&elsewhere),
        id("abc"),
        id("alias/app-aes"),
        class(CKO_DATA),
        class(CKO_SECRET_KEY),
        class(CKO_PRIVATE_KEY),
        class(CKO_PUBLIC_KEY),
        class(CKO_CERTIFICATE),
        vec![(CKA_KEY_TYPE, ulong(CKK_EC))],
        vec![
            (CKA_CLASS, ulong(CKO_PUBLIC_KEY)),
            (CKA_KEY_TYPE, ulong(CKK_EC)),
        ],
        vec![
            (CKA_CLASS, ulong(CKO_DATA)),
            (CKA_LABEL, b"app-aes".to_vec()),
        ],
        vec![(CKA_ID, b"abc".to_vec()), (CKA_LABEL, b"data-2".to_vec())],
        vec![(CKA_TOKEN, bbool(true)), (CKA_PRIVATE, bbool(false))],
    ];
    let whole = backend.load_objects(&serial).unwrap();
    for template in &templates {
        let want = found(
            whole
                .iter()
                .filter(|o| template.iter().all(|(t, v)| o.attrs.get(t) == Some(v)))
                .cloned()
                .collect(),
        );
        let got = found(backend.find_objects(&serial, template).unwrap());
        assert_eq!(got, want, "template {template:?}");
    }
    // What the mixed token shows, by name.
    let kms = |k: &str| format!("kms:{k}");
    let pubk = |k: &str| format!("kms:{k}:pub");
    let by = |t: &Template| found(backend.find_objects(&serial, t).unwrap());
    assert_eq!(ids(&by(&label("app-aes"))), vec![kms(&aes)]);
    assert!(by(&label("d-aes")).is_empty(), "an alias names the key");
    let mut pair = vec![kms(&signer), pubk(&signer)];
    pair.sort();
    assert_eq!(ids(&by(&label("signer"))), pair, "a description names it");
    assert_eq!(ids(&by(&id(&signer))), pair);
    assert!(by(&id(&doomed)).is_empty() && by(&label("doomed-row")).is_empty());
    assert!(by(&id(&elsewhere)).is_empty());
    assert_eq!(by(&label("row-described")).len(), 1);
    assert!(
        by(&label("hm")).is_empty(),
        "a described key is not synthesised"
    );
    assert_eq!(by(&id("abc")).len(), 2);
    assert_eq!(by(&class(CKO_DATA)).len(), 2);
    assert!(by(&class(CKO_CERTIFICATE)).is_empty());

    // Rows stored before the search columns: nothing finds them through
    // the index until the store reopens, and then a search does.
    hsm.lock_store()
        .write_unaudited(|db| {
            db.execute(
                "UPDATE p11_objects SET a_class = NULL, a_id = NULL, a_label = NULL,
                     a_key_type = NULL, searchable = 0",
                &vals![],
            )
        })
        .unwrap();
    assert!(by(&label("data-1")).is_empty());
    drop(backend);
    drop(hsm);
    let hsm = Arc::new(reopen());
    let backend = EmbeddedBackend::over_hsm(hsm);
    let found = found(backend.find_objects(&serial, &label("data-1")).unwrap());
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1.get(&CKA_ID), Some(&b"abc".to_vec()));
    assert_eq!(backend.find_objects(&serial, &id("abc")).unwrap().len(), 2);
    assert_eq!(
        backend
            .find_objects(&serial, &label("row-described"))
            .unwrap()
            .len(),
        1
    );
}

/// What takes a SQLite store back to schema 8 (migration 9 undone).
pub(crate) const UNDO_MIGRATION_9: &str = "
    DROP INDEX p11_objects_by_label; DROP INDEX p11_objects_by_ckaid;
    DROP INDEX p11_objects_by_class; DROP INDEX p11_objects_by_key_type;
    DROP INDEX p11_objects_unsearchable; DROP INDEX keys_by_token_description;
    ALTER TABLE p11_objects DROP COLUMN a_class; ALTER TABLE p11_objects DROP COLUMN a_id;
    ALTER TABLE p11_objects DROP COLUMN a_label; ALTER TABLE p11_objects DROP COLUMN a_key_type;
    ALTER TABLE p11_objects DROP COLUMN searchable;
    PRAGMA user_version = 8;";

fn fast() -> crate::HsmOptions {
    crate::HsmOptions {
        kdf: crate::KdfParams::MINIMUM,
        ..Default::default()
    }
}

/// A SQLite store of schema 8 (rows without search columns) upgrades at
/// its next open, and its rows are found by label, id and class.
#[test]
fn rows_of_a_schema_8_store_are_found_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let pass = crate::SecretString::from("pass");
    let serial = {
        let hsm = Arc::new(Hsm::init(dir.path(), &pass, fast()).unwrap());
        let backend = EmbeddedBackend::over_hsm(hsm);
        let serial = backend.init_token(None, "tok", b"so-pin-1").unwrap();
        for i in 0..3 {
            let label = format!("old-{i}");
            backend
                .store_object(&serial, &data(&label, b"old"), None)
                .unwrap();
        }
        serial
    };
    {
        let conn = rusqlite::Connection::open(dir.path().join("tinfoil.db")).unwrap();
        conn.execute_batch(UNDO_MIGRATION_9).unwrap();
    }
    let hsm = Arc::new(Hsm::open(dir.path(), &pass, fast()).unwrap());
    let backend = EmbeddedBackend::over_hsm(hsm);
    let label = vec![(CKA_LABEL, b"old-1".to_vec())];
    let got = backend.find_objects(&serial, &label).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attrs.get(&CKA_LABEL), Some(&b"old-1".to_vec()));
    let id = vec![(CKA_ID, b"old".to_vec())];
    assert_eq!(backend.find_objects(&serial, &id).unwrap().len(), 3);
    let class = vec![(CKA_CLASS, ulong(CKO_DATA))];
    assert_eq!(backend.find_objects(&serial, &class).unwrap().len(), 3);
}

/// SQLite goes through the index the search names, never a walk of the
/// token's rows, when the template names a searchable attribute.
#[test]
fn sqlite_searches_through_the_indexes() {
    use crate::token::search::search_sql;
    use crate::token::ObjectQuery;
    let dir = tempfile::tempdir().unwrap();
    let hsm = Hsm::init(dir.path(), &crate::SecretString::from("pass"), fast()).unwrap();
    let v = b"x".as_slice();
    let cases = [
        (
            ObjectQuery {
                label: Some(v),
                ..Default::default()
            },
            "p11_objects_by_label",
        ),
        (
            ObjectQuery {
                id: Some(v),
                class: Some(v),
                ..Default::default()
            },
            "p11_objects_by_ckaid",
        ),
        (
            ObjectQuery {
                class: Some(v),
                ..Default::default()
            },
            "p11_objects_by_class",
        ),
        (
            ObjectQuery {
                class: Some(v),
                key_type: Some(v),
                ..Default::default()
            },
            "p11_objects_by_class",
        ),
        (
            ObjectQuery {
                key_type: Some(v),
                ..Default::default()
            },
            "p11_objects_by_key_type",
        ),
    ];
    let store = hsm.lock_store();
    let plan = |sql: &str, n: usize| -> String {
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let params: Vec<&dyn rusqlite::ToSql> = std::iter::once(&"t" as &dyn rusqlite::ToSql)
            .chain(std::iter::repeat_n(&v as &dyn rusqlite::ToSql, n))
            .collect();
        let rows = stmt
            .query_map(params.as_slice(), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    };
    for (query, index) in cases {
        let n = [query.class, query.id, query.label, query.key_type]
            .iter()
            .flatten()
            .count();
        let detail = plan(&search_sql(&query, false), n);
        assert!(
            detail.contains(&format!("USING INDEX {index} (token=? AND")),
            "{query:?}: {detail}"
        );
    }
    let detail = plan(
        "SELECT key_id FROM keys INDEXED BY keys_by_token_description
         WHERE token = ?1 AND description = ?2 ORDER BY key_id",
        1,
    );
    assert!(
        detail.contains("keys_by_token_description (token=? AND description=?)"),
        "{detail}"
    );
}

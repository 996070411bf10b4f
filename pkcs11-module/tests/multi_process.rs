//! Several processes on one embedded store at once (issue 12, "the
//! fixture"): 2 to 8 worker processes (this test binary run again, each
//! loading the module itself) create token data objects and AES keys,
//! find them and destroy some, all at the same moment. Every object a
//! worker was told exists (CKR_OK) is found afterwards by a new process,
//! exactly once; every one it destroyed is gone; each worker sees the
//! others' objects while they run; the store's audit chain stays one
//! valid chain. The same workers against SoftHSM2 prove the test.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::{load, Which, USER_PIN};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

/// Set in a worker's environment: "<module path>|<worker id>|<rounds>".
const WORKER: &str = "TINFOIL_MP_WORKER";
const TOKEN: &str = "shared";

/// Not a test on its own: the body of a worker process (returns at once
/// in a normal test run).
#[test]
fn worker_process() {
    let Ok(spec) = std::env::var(WORKER) else {
        return;
    };
    if let Some(module) = spec.strip_prefix("open|") {
        // Only opens the store (making it if nobody did yet) and lists.
        let p11 = Pkcs11::new(module).unwrap();
        p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        let slots = p11.get_all_slots().unwrap();
        println!("\nslots {}", slots.len());
        p11.finalize().unwrap();
        return;
    }
    let mut parts = spec.split('|');
    let module = parts.next().unwrap().to_string();
    let id: usize = parts.next().unwrap().parse().unwrap();
    let rounds: usize = parts.next().unwrap().parse().unwrap();
    let out = std::io::stdout();
    let say = |line: String| {
        let mut out = out.lock();
        // On a line of its own (libtest leaves "test worker_process ... " open).
        writeln!(out, "\n{line}").unwrap();
        out.flush().unwrap();
    };
    let p11 = Pkcs11::new(module).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let session = user_session(&p11);
    let mut mine: Vec<String> = Vec::new();
    let mut others_seen = 0;
    for round in 0..rounds {
        let label = format!("w{id}-{round}");
        if round % 4 == 3 {
            let made = session.generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Token(true),
                    Attribute::ValueLen(32.into()),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Label(label.clone().into_bytes()),
                ],
            );
            made.unwrap_or_else(|e| panic!("worker {id}: AES key {label}: {e}"));
        } else {
            session
                .create_object(&[
                    Attribute::Class(ObjectClass::DATA),
                    Attribute::Token(true),
                    Attribute::Label(label.clone().into_bytes()),
                    Attribute::Value(label.clone().into_bytes()),
                ])
                .unwrap_or_else(|e| panic!("worker {id}: {label}: {e}"));
        }
        say(format!("created {label}"));
        let found = session
            .find_objects(&[Attribute::Label(label.clone().into_bytes())])
            .unwrap();
        assert_eq!(found.len(), 1, "worker {id} finds its own {label}");
        mine.push(label);
        // Every third object of this worker is destroyed again.
        if round % 3 == 2 {
            let doomed = mine.remove(0);
            let found = session
                .find_objects(&[Attribute::Label(doomed.clone().into_bytes())])
                .unwrap();
            assert_eq!(found.len(), 1, "worker {id}: {doomed} before destroying");
            session.destroy_object(found[0]).unwrap();
            say(format!("destroyed {doomed}"));
            let again = session
                .find_objects(&[Attribute::Label(doomed.clone().into_bytes())])
                .unwrap();
            assert!(again.is_empty(), "worker {id}: {doomed} still found");
        }
        // What the others made so far shows here too.
        let all = labels(&session);
        others_seen = others_seen.max(
            all.iter()
                .filter(|l| !l.starts_with(&format!("w{id}-")))
                .count(),
        );
    }
    say(format!("seen {others_seen}"));
    session.logout().unwrap();
    drop(session);
    p11.finalize().unwrap();
}

fn user_session(p11: &Pkcs11) -> Session {
    let slot = p11
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| p11.get_token_info(*s).unwrap().label() == TOKEN)
        .expect("the shared token");
    let session = p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    session
}

/// The labels of every object a session finds.
fn labels(session: &Session) -> Vec<String> {
    let mut out = Vec::new();
    for handle in session.find_objects(&[]).unwrap() {
        let Ok(attrs) = session.get_attributes(handle, &[AttributeType::Label]) else {
            continue; // destroyed by another process meanwhile
        };
        if let Some(Attribute::Label(label)) = attrs.first() {
            out.push(String::from_utf8_lossy(label).into_owned());
        }
    }
    out
}

/// What the workers reported: created and destroyed labels, and how many
/// of the others' objects each saw at most.
struct Reports {
    created: BTreeSet<String>,
    destroyed: BTreeSet<String>,
    seen: Vec<usize>,
}

/// Runs worker processes `ids` of `rounds` rounds each at once on the
/// module at `module` (its configuration in the environment), the token
/// already made; every worker must succeed.
/// With `at_once` false they take turns instead (the control of the
/// test's own bookkeeping).
fn run_workers(module: &str, ids: std::ops::Range<usize>, rounds: usize, at_once: bool) -> Reports {
    let exe = std::env::current_exe().unwrap();
    let workers = ids.len();
    let start = |id: usize| {
        Command::new(&exe)
            .args([
                "--exact",
                "worker_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WORKER, format!("{module}|{id}|{rounds}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut outputs = Vec::new();
    if at_once {
        let children: Vec<_> = ids.map(start).collect();
        for child in children {
            outputs.push(child.wait_with_output().unwrap());
        }
    } else {
        for id in ids {
            outputs.push(start(id).wait_with_output().unwrap());
        }
    }
    let mut reports = Reports {
        created: BTreeSet::new(),
        destroyed: BTreeSet::new(),
        seen: Vec::new(),
    };
    for (id, out) in outputs.into_iter().enumerate() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "worker {id} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in stdout.lines() {
            if let Some(label) = line.strip_prefix("created ") {
                reports.created.insert(label.to_string());
            } else if let Some(label) = line.strip_prefix("destroyed ") {
                reports.destroyed.insert(label.to_string());
            } else if let Some(n) = line.strip_prefix("seen ") {
                reports.seen.push(n.parse().unwrap());
            }
        }
    }
    assert_eq!(reports.seen.len(), workers, "every worker finished");
    reports
}

/// Every acknowledged object, and no destroyed one, is found exactly once
/// by a process that opens the store afterwards.
fn check_afterwards(p11: &Pkcs11, reports: &Reports, workers: usize, rounds: usize) {
    assert_eq!(reports.created.len(), workers * rounds);
    let session = user_session(p11);
    let mut found = labels(&session);
    found.sort();
    let unique: BTreeSet<String> = found.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        found.len(),
        "an object found twice: {found:?}"
    );
    let expected: BTreeSet<String> = reports
        .created
        .difference(&reports.destroyed)
        .cloned()
        .collect();
    let lost: Vec<_> = expected.difference(&unique).collect();
    let revived: Vec<_> = reports.destroyed.intersection(&unique).collect();
    assert!(lost.is_empty(), "acknowledged objects lost: {lost:?}");
    assert!(revived.is_empty(), "destroyed objects found: {revived:?}");
    assert_eq!(unique, expected);
}

fn race(which: Which, workers: usize, rounds: usize, at_once: bool) {
    let m = load(which);
    m.token(TOKEN);
    let module = match which {
        Which::SoftHsm => common::SOFTHSM.to_string(),
        _ => common::tinfoil_path().display().to_string(),
    };
    // The parent keeps the module initialised (and the store open)
    // throughout, as an application beside its workers would.
    let reports = run_workers(&module, 0..workers, rounds, at_once);
    check_afterwards(&m.p11, &reports, workers, rounds);
    if workers > 1 && at_once {
        assert!(
            reports.seen.iter().any(|&n| n > 0),
            "no worker saw another's objects: {:?}",
            reports.seen
        );
    }
    // A process started afterwards sees the same.
    let again = run_workers(&module, 100..101, 1, true);
    assert_eq!(
        again.seen,
        vec![reports.created.len() - reports.destroyed.len()]
    );
    if which == Which::Embedded {
        audit_chain_verifies(m.dir.path(), 1);
    }
}

/// Exports the store's audit log (after every process let go of it) and
/// verifies the chain offline.
fn audit_chain_verifies(dir: &std::path::Path, at_least: u64) {
    use hsm_core::audit::export::ExportWriter;
    use hsm_core::{Caller, Hsm, HsmOptions, Principal, SecretString};
    // The test's own module instance still holds the store (shared); a
    // shared open here works beside it.
    let passphrase = SecretString::from("a passphrase for tests".to_string());
    let hsm = Hsm::open_shared(&dir.join("data"), &passphrase, HsmOptions::default()).unwrap();
    let caller = Caller::new(Principal::Root, "multi-process test");
    let gate = hsm.gate(&caller);
    let export = tempfile::tempdir().unwrap();
    let out = export.path().join("audit");
    let mut writer = ExportWriter::create(&out).unwrap();
    let (mut from, mut to) = (1, 0);
    let key = loop {
        let page = gate.export_audit_log(from, to).unwrap();
        to = page.to_sequence;
        for (size, note) in &page.checkpoints {
            writer.checkpoint(*size, note).unwrap();
        }
        for (sequence, record) in &page.records {
            writer.record(*sequence, record).unwrap();
        }
        match page.next_sequence {
            Some(next) => from = next,
            None => break page.public_key.clone(),
        }
    };
    let origin = key.split('+').next().unwrap().to_string();
    writer.finish(&key, &origin).unwrap();
    let report = hsm_core::audit::verify_dir(&out, &key).expect("the chain verifies");
    eprintln!("audit after the race: {report}");
    assert!(report.records >= at_least, "{report}");
}

/// Eight processes start on a data directory that holds no store yet
/// (pytest-xdist workers on a fresh fixture): one makes it, the others
/// wait and open it; the store unseals afterwards and its audit chain (one
/// signing key) verifies.
#[test]
fn eight_processes_open_a_fresh_store_at_once() {
    let _g = common::exclusive();
    let dir = tempfile::tempdir().unwrap();
    common::write_embedded_config(dir.path());
    assert!(!dir.path().join("data").exists());
    let exe = std::env::current_exe().unwrap();
    let module = common::tinfoil_path().display().to_string();
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "worker_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(WORKER, format!("open|{module}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("\nslots "),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    audit_chain_verifies(dir.path(), 0);
}

#[test]
fn two_processes_race_on_one_embedded_store() {
    race(Which::Embedded, 2, 12, true);
}

#[test]
fn eight_processes_race_on_one_embedded_store() {
    race(Which::Embedded, 8, 8, true);
}

/// The control: SoftHSM2 passes the same checks when its processes take
/// turns (it does not when they run at once: see below).
#[test]
fn softhsm_control_eight_processes_taking_turns() {
    race(Which::SoftHsm, 8, 8, false);
}

/// SoftHSM 2.6.1 fails these here, differently each time (a worker does
/// not find the object it just made, or its C_GetTokenInfo is
/// CKR_GENERAL_ERROR): the races of its file store (SoftHSM #757). Not
/// run by default; `--ignored` shows them.
#[test]
#[ignore = "SoftHSM 2.6.1 loses this race (its #757)"]
fn softhsm_two_processes_at_once() {
    race(Which::SoftHsm, 2, 12, true);
}

/// See [`softhsm_two_processes_at_once`].
#[test]
#[ignore = "SoftHSM 2.6.1 loses this race (its #757)"]
fn softhsm_eight_processes_at_once() {
    race(Which::SoftHsm, 8, 8, true);
}

//! Grants: delegations of some operations on one key to one principal,
//! optionally constrained by the encryption context (AWS KMS grants).
//!
//! [`Grants`] is the in-memory index the gate consults on every key
//! operation: grants by key, then by grantee, so that matching a request is
//! a hash lookup and a scan of the caller's own grants on that key (100
//! grants for other principals on the key cost nothing). The rows live in
//! the store's `grants` table (see [`put_grant`], [`delete_grant`],
//! [`load`]); they cascade away with their key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use crate::store::engine::{vals, Db, Row};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::types::{printable, EncryptionContext, KeySpec, KeyUsage, Page, UnixSeconds};

/// The most grants one key may carry (AWS's quota).
pub const MAX_GRANTS_PER_KEY: usize = 50_000;
/// The most grant tokens one request may carry.
pub const MAX_GRANT_TOKENS: usize = 10;
/// The most encryption context pairs in one grant constraint.
pub const MAX_CONSTRAINT_PAIRS: usize = 8;
/// The longest encryption context value in a grant constraint.
const MAX_CONSTRAINT_VALUE: usize = 384;

macro_rules! grant_operations {
    ($($(#[$doc:meta])* $variant:ident = $bit:expr,)*) => {
        /// An operation a grant allows (`GrantOperation`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum GrantOperation {
            $($(#[$doc])* $variant,)*
        }

        impl GrantOperation {
            /// Every operation, in KMS's order.
            pub const ALL: &'static [GrantOperation] = &[$(GrantOperation::$variant,)*];

            /// The KMS name, e.g. `"Decrypt"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(GrantOperation::$variant => stringify!($variant),)*
                }
            }

            /// The operation a KMS name stands for.
            pub fn parse(name: &str) -> Result<GrantOperation> {
                match name {
                    $(stringify!($variant) => Ok(GrantOperation::$variant),)*
                    other => Err(Error::validation(format!(
                        "{} is not a grant operation",
                        printable(other)
                    ))),
                }
            }

            fn bit(self) -> u32 {
                match self {
                    $(GrantOperation::$variant => 1 << $bit,)*
                }
            }
        }
    };
}

grant_operations! {
    /// Decrypt.
    Decrypt = 0,
    /// Encrypt.
    Encrypt = 1,
    /// GenerateDataKey.
    GenerateDataKey = 2,
    /// GenerateDataKeyWithoutPlaintext.
    GenerateDataKeyWithoutPlaintext = 3,
    /// ReEncrypt with the key as the source.
    ReEncryptFrom = 4,
    /// ReEncrypt with the key as the destination.
    ReEncryptTo = 5,
    /// Sign.
    Sign = 6,
    /// Verify.
    Verify = 7,
    /// GetPublicKey.
    GetPublicKey = 8,
    /// CreateGrant (passing on a subset of this grant).
    CreateGrant = 9,
    /// RetireGrant (the grantee retiring this grant).
    RetireGrant = 10,
    /// DescribeKey.
    DescribeKey = 11,
    /// GenerateDataKeyPair.
    GenerateDataKeyPair = 12,
    /// GenerateDataKeyPairWithoutPlaintext.
    GenerateDataKeyPairWithoutPlaintext = 13,
    /// GenerateMac.
    GenerateMac = 14,
    /// VerifyMac.
    VerifyMac = 15,
    /// DeriveSharedSecret.
    DeriveSharedSecret = 16,
    /// Encapsulate (ML-KEM keys).
    Encapsulate = 17,
    /// Decapsulate (ML-KEM keys).
    Decapsulate = 18,
}

impl std::fmt::Display for GrantOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl GrantOperation {
    /// The grant operation a KMS action (`kms:Encrypt`) stands for, if a
    /// grant can allow it.
    pub fn for_action(action: &str) -> Option<GrantOperation> {
        let name = action.strip_prefix("kms:")?;
        GrantOperation::parse(name).ok()
    }

    /// Whether the operation takes an encryption context (grant
    /// constraints apply only to those).
    fn takes_context(self) -> bool {
        use GrantOperation::*;
        matches!(
            self,
            Decrypt
                | Encrypt
                | GenerateDataKey
                | GenerateDataKeyWithoutPlaintext
                | ReEncryptFrom
                | ReEncryptTo
                | GenerateDataKeyPair
                | GenerateDataKeyPairWithoutPlaintext
        )
    }

    /// Whether a grant on a key of this spec and usage may name the
    /// operation (as KMS checks at CreateGrant).
    fn valid_for(self, spec: KeySpec, usage: KeyUsage) -> bool {
        use GrantOperation::*;
        match self {
            CreateGrant | RetireGrant | DescribeKey => true,
            Decrypt | Encrypt | ReEncryptFrom | ReEncryptTo => usage == KeyUsage::EncryptDecrypt,
            GenerateDataKey
            | GenerateDataKeyWithoutPlaintext
            | GenerateDataKeyPair
            | GenerateDataKeyPairWithoutPlaintext => spec.is_symmetric(),
            GetPublicKey => !spec.is_symmetric() && !spec.is_hmac(),
            Sign | Verify => usage == KeyUsage::SignVerify,
            GenerateMac | VerifyMac => usage == KeyUsage::GenerateVerifyMac,
            DeriveSharedSecret => false,
            Encapsulate | Decapsulate => usage == KeyUsage::EncapsulateDecapsulate,
        }
    }
}

/// A set of grant operations, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct OpSet(u32);

impl OpSet {
    fn of(ops: &[GrantOperation]) -> OpSet {
        OpSet(ops.iter().fold(0, |acc, op| acc | op.bit()))
    }
    fn contains(self, op: GrantOperation) -> bool {
        self.0 & op.bit() != 0
    }
    fn is_subset_of(self, other: OpSet) -> bool {
        self.0 & !other.0 == 0
    }
    fn to_vec(self) -> Vec<GrantOperation> {
        GrantOperation::ALL
            .iter()
            .copied()
            .filter(|op| self.contains(*op))
            .collect()
    }
}

/// A grant's encryption context constraints (`GrantConstraints`). Keys
/// compare case-insensitively, values case-sensitively, as in KMS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantConstraints {
    /// The request's context must be exactly this.
    pub encryption_context_equals: Option<EncryptionContext>,
    /// The request's context must include these pairs.
    pub encryption_context_subset: Option<EncryptionContext>,
}

impl GrantConstraints {
    fn is_empty(&self) -> bool {
        self.encryption_context_equals.is_none() && self.encryption_context_subset.is_none()
    }

    /// The constraint types present (`kms:GrantConstraintType`).
    pub fn types(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.encryption_context_equals.is_some() {
            out.push("EncryptionContextEquals".to_string());
        }
        if self.encryption_context_subset.is_some() {
            out.push("EncryptionContextSubset".to_string());
        }
        out
    }
}

/// Lower-cased keys, for case-insensitive comparison.
fn folded(context: &EncryptionContext) -> BTreeMap<String, String> {
    context
        .iter()
        .map(|(k, v)| (k.to_lowercase(), v.clone()))
        .collect()
}

/// Constraints compiled for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Compiled {
    equals: Option<BTreeMap<String, String>>,
    subset: Option<BTreeMap<String, String>>,
}

impl Compiled {
    fn new(c: &GrantConstraints) -> Compiled {
        Compiled {
            equals: c.encryption_context_equals.as_ref().map(folded),
            subset: c.encryption_context_subset.as_ref().map(folded),
        }
    }

    fn holds(&self, context: &EncryptionContext) -> bool {
        let lookup = |k: &str| -> Option<&String> {
            context
                .iter()
                .find(|(rk, _)| rk.to_lowercase() == k)
                .map(|(_, v)| v)
        };
        if let Some(eq) = &self.equals {
            if context.len() != eq.len() || !eq.iter().all(|(k, v)| lookup(k) == Some(v)) {
                return false;
            }
        }
        if let Some(sub) = &self.subset {
            if !sub.iter().all(|(k, v)| lookup(k) == Some(v)) {
                return false;
            }
        }
        true
    }

    /// Whether `self` (a new grant's constraints) is at least as strict as
    /// `parent`: every context `self` admits, `parent` admits too.
    fn at_least_as_strict_as(&self, parent: &Compiled) -> bool {
        let within = |small: &BTreeMap<String, String>, big: &BTreeMap<String, String>| {
            small.iter().all(|(k, v)| big.get(k) == Some(v))
        };
        if let Some(peq) = &parent.equals {
            if self.equals.as_ref() != Some(peq) {
                return false;
            }
        }
        if let Some(psub) = &parent.subset {
            let by_equals = self.equals.as_ref().is_some_and(|e| within(psub, e));
            let by_subset = self.subset.as_ref().is_some_and(|s| within(psub, s));
            if !by_equals && !by_subset {
                return false;
            }
        }
        true
    }
}

/// What CreateGrant takes.
#[derive(Debug, Clone, Default)]
pub struct CreateGrantRequest {
    /// The key (id, ARN, alias name or alias ARN).
    pub key_id: String,
    /// Who receives the operations (a principal ARN).
    pub grantee_principal: String,
    /// Who may retire the grant, besides the grantee with RetireGrant.
    pub retiring_principal: Option<String>,
    /// The operations allowed (at least one).
    pub operations: Vec<GrantOperation>,
    /// Encryption context constraints.
    pub constraints: Option<GrantConstraints>,
    /// A name: an identical repeat with the same name returns the same grant.
    pub name: Option<String>,
    /// Grant tokens (accepted, checked, never needed).
    pub grant_tokens: Vec<String>,
}

/// What CreateGrant returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateGrantOutput {
    /// The grant's id (64 hex digits).
    pub grant_id: String,
    /// A token naming the grant (RetireGrant takes it).
    pub grant_token: String,
}

/// A grant as ListGrants / ListRetirableGrants show it (`GrantListEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantListEntry {
    /// The key's ARN.
    pub key_id: String,
    /// The grant's id.
    pub grant_id: String,
    /// The grant's name, if it has one.
    pub name: Option<String>,
    /// When it was created.
    pub creation_date: UnixSeconds,
    /// Who receives the operations.
    pub grantee_principal: String,
    /// Who may retire it.
    pub retiring_principal: Option<String>,
    /// The principal that created it.
    pub issuing_account: String,
    /// The operations it allows.
    pub operations: Vec<GrantOperation>,
    /// Its constraints.
    pub constraints: Option<GrantConstraints>,
}

/// One grant, as stored and indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub grant_id: String,
    pub key_id: Uuid,
    pub name: Option<String>,
    pub grantee: String,
    pub retiring: Option<String>,
    pub operations: OpSet,
    pub constraints: Option<GrantConstraints>,
    compiled: Option<Compiled>,
    pub issuing: String,
    pub created: UnixSeconds,
}

impl Grant {
    /// A new grant from validated parts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        grant_id: String,
        key_id: Uuid,
        name: Option<String>,
        grantee: String,
        retiring: Option<String>,
        operations: &[GrantOperation],
        constraints: Option<GrantConstraints>,
        issuing: String,
        created: UnixSeconds,
    ) -> Grant {
        let constraints = constraints.filter(|c| !c.is_empty());
        Grant {
            compiled: constraints.as_ref().map(Compiled::new),
            grant_id,
            key_id,
            name,
            grantee,
            retiring,
            operations: OpSet::of(operations),
            constraints,
            issuing,
            created,
        }
    }

    /// Whether the grant allows `op` with the request's encryption context
    /// (constraints apply only to operations that take a context).
    pub fn allows(&self, op: GrantOperation, context: Option<&EncryptionContext>) -> bool {
        if !self.operations.contains(op) {
            return false;
        }
        match (&self.compiled, op.takes_context()) {
            (Some(c), true) => c.holds(context.unwrap_or(&EncryptionContext::new())),
            _ => true,
        }
    }

    /// Whether this grant (the caller's, with CreateGrant) may pass on a
    /// grant of `operations` with `constraints`: a subset of its operations
    /// under equal or stricter constraints.
    pub fn may_pass_on(
        &self,
        operations: &[GrantOperation],
        constraints: Option<&GrantConstraints>,
    ) -> bool {
        if !self.operations.contains(GrantOperation::CreateGrant)
            || !OpSet::of(operations).is_subset_of(self.operations)
        {
            return false;
        }
        match &self.compiled {
            None => true,
            Some(parent) => constraints
                .filter(|c| !c.is_empty())
                .is_some_and(|c| Compiled::new(c).at_least_as_strict_as(parent)),
        }
    }

    /// Whether a CreateGrant request with these parts repeats this grant.
    pub fn same_as(
        &self,
        name: &str,
        grantee: &str,
        retiring: Option<&str>,
        operations: &[GrantOperation],
        constraints: Option<&GrantConstraints>,
    ) -> bool {
        self.name.as_deref() == Some(name)
            && self.grantee == grantee
            && self.retiring.as_deref() == retiring
            && self.operations == OpSet::of(operations)
            && self.constraints.as_ref() == constraints.filter(|c| !c.is_empty())
    }

    /// The listing form.
    pub fn entry(&self, key_arn: String, issuing_account: String) -> GrantListEntry {
        GrantListEntry {
            key_id: key_arn,
            grant_id: self.grant_id.clone(),
            name: self.name.clone(),
            creation_date: self.created,
            grantee_principal: self.grantee.clone(),
            retiring_principal: self.retiring.clone(),
            issuing_account,
            operations: self.operations.to_vec(),
            constraints: self.constraints.clone(),
        }
    }
}

/// The lower bound of the items after a marker.
fn bound_after(after: Option<&str>) -> Bound<&str> {
    after.map_or(Bound::Unbounded, Bound::Excluded)
}

/// The grants of one key.
#[derive(Debug, Default)]
struct KeyGrants {
    /// By grant id (sorted: ListGrants pages by id).
    by_id: BTreeMap<String, Arc<Grant>>,
    /// By grantee principal ARN.
    by_grantee: HashMap<String, Vec<Arc<Grant>>>,
}

/// Every grant, indexed by key and grantee, and by retiring principal.
#[derive(Debug, Default)]
pub(crate) struct Grants {
    by_key: HashMap<Uuid, KeyGrants>,
    /// grant id -> key id.
    keys: HashMap<String, Uuid>,
    /// retiring principal -> grant ids.
    by_retiring: HashMap<String, BTreeSet<String>>,
}

impl Grants {
    /// Adds a grant to the index.
    pub fn insert(&mut self, grant: Grant) {
        let grant = Arc::new(grant);
        let entry = self.by_key.entry(grant.key_id).or_default();
        entry
            .by_grantee
            .entry(grant.grantee.clone())
            .or_default()
            .push(grant.clone());
        entry.by_id.insert(grant.grant_id.clone(), grant.clone());
        self.keys.insert(grant.grant_id.clone(), grant.key_id);
        if let Some(r) = &grant.retiring {
            self.by_retiring
                .entry(r.clone())
                .or_default()
                .insert(grant.grant_id.clone());
        }
    }

    /// Removes a grant from the index.
    pub fn remove(&mut self, grant_id: &str) -> Option<Arc<Grant>> {
        let key = self.keys.remove(grant_id)?;
        let entry = self.by_key.get_mut(&key)?;
        let grant = entry.by_id.remove(grant_id)?;
        if let Some(list) = entry.by_grantee.get_mut(&grant.grantee) {
            list.retain(|g| g.grant_id != grant_id);
            if list.is_empty() {
                entry.by_grantee.remove(&grant.grantee);
            }
        }
        if entry.by_id.is_empty() {
            self.by_key.remove(&key);
        }
        self.unindex_retiring(&grant);
        Some(grant)
    }

    fn unindex_retiring(&mut self, grant: &Grant) {
        if let Some(r) = &grant.retiring {
            if let Some(set) = self.by_retiring.get_mut(r) {
                set.remove(&grant.grant_id);
                if set.is_empty() {
                    self.by_retiring.remove(r);
                }
            }
        }
    }

    /// Drops every grant of a key (destroyed: its rows cascaded away).
    #[cfg(test)]
    pub fn forget_key(&mut self, key: &Uuid) {
        if let Some(entry) = self.by_key.remove(key) {
            for grant in entry.by_id.values() {
                self.keys.remove(&grant.grant_id);
                self.unindex_retiring(grant);
            }
        }
    }

    /// A grant by id.
    pub fn get(&self, grant_id: &str) -> Option<&Arc<Grant>> {
        let key = self.keys.get(grant_id)?;
        self.by_key.get(key)?.by_id.get(grant_id)
    }

    /// How many grants a key has.
    pub fn count(&self, key: &Uuid) -> usize {
        self.by_key.get(key).map_or(0, |e| e.by_id.len())
    }

    /// The grants of `grantee` on `key`.
    pub fn of_grantee(&self, key: &Uuid, grantee: &str) -> &[Arc<Grant>] {
        self.by_key
            .get(key)
            .and_then(|e| e.by_grantee.get(grantee))
            .map_or(&[], |v| v.as_slice())
    }

    /// Whether a grant of `grantee` on `key` allows `op` with `context`.
    pub fn allows(
        &self,
        key: &Uuid,
        grantee: &str,
        op: GrantOperation,
        context: Option<&EncryptionContext>,
    ) -> bool {
        self.of_grantee(key, grantee)
            .iter()
            .any(|g| g.allows(op, context))
    }

    /// The grants of a key in id order, from the first after `after` on
    /// (a seek in the key's ordered index).
    pub fn of_key<'a>(
        &'a self,
        key: &Uuid,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<Grant>> + 'a {
        self.by_key
            .get(key)
            .into_iter()
            .flat_map(move |e| {
                e.by_id
                    .range::<str, _>((bound_after(after), Bound::Unbounded))
            })
            .map(|(_, g)| g)
    }

    /// The grants `retiring` may retire as their retiring principal, in id
    /// order, from the first after `after` on (the store answers this for
    /// the daemon: [`crate::grant_cache::GrantCache::retirable_by`]).
    #[cfg(test)]
    pub fn retirable_by<'a>(
        &'a self,
        retiring: &str,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<Grant>> + 'a {
        self.by_retiring
            .get(retiring)
            .into_iter()
            .flat_map(move |ids| ids.range::<str, _>((bound_after(after), Bound::Unbounded)))
            .filter_map(|id| self.get(id))
    }
}

/// Checks CreateGrant's parameters that need no store: operations for the
/// key's spec and usage, the name, the constraints.
pub(crate) fn validate_request(
    request: &CreateGrantRequest,
    spec: KeySpec,
    usage: KeyUsage,
) -> Result<()> {
    if request.operations.is_empty() {
        return Err(Error::validation(
            "a grant must allow at least one operation",
        ));
    }
    if request.operations.len() > GrantOperation::ALL.len() {
        return Err(Error::validation(format!(
            "a grant names at most {} operations",
            GrantOperation::ALL.len()
        )));
    }
    for op in &request.operations {
        if !op.valid_for(spec, usage) {
            return Err(Error::validation(format!(
                "grant operation {op} is not valid for a {spec} key with usage {usage}"
            )));
        }
    }
    if let Some(name) = &request.name {
        let ok = !name.is_empty()
            && name.len() <= 256
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":/_-".contains(&b));
        if !ok {
            return Err(Error::validation(format!(
                "grant name {} must be 1 to 256 of a-z, A-Z, 0-9 and :/_-",
                printable(name)
            )));
        }
    }
    if let Some(c) = request.constraints.as_ref().filter(|c| !c.is_empty()) {
        if !spec.is_symmetric() {
            return Err(Error::validation(format!(
                "encryption context grant constraints are only for symmetric encryption keys, not {spec}"
            )));
        }
        for map in [&c.encryption_context_equals, &c.encryption_context_subset]
            .into_iter()
            .flatten()
        {
            if map.is_empty() || map.len() > MAX_CONSTRAINT_PAIRS {
                return Err(Error::validation(format!(
                    "a grant constraint holds 1 to {MAX_CONSTRAINT_PAIRS} encryption context pairs"
                )));
            }
            if map
                .iter()
                .any(|(k, v)| k.is_empty() || v.chars().count() > MAX_CONSTRAINT_VALUE)
            {
                return Err(Error::validation(format!(
                    "grant constraint keys must not be empty and values are at most {MAX_CONSTRAINT_VALUE} characters"
                )));
            }
        }
    }
    if request.grant_tokens.len() > MAX_GRANT_TOKENS {
        return Err(Error::validation(format!(
            "at most {MAX_GRANT_TOKENS} grant tokens per request"
        )));
    }
    Ok(())
}

/// A new random grant id: 64 lowercase hex digits.
pub(crate) fn new_grant_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    crate::sealing::random_fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `id` has the shape of a grant id.
pub(crate) fn is_grant_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// One page of grants in grant id order.
pub(crate) fn page<'g>(
    grants: impl Iterator<Item = &'g Arc<Grant>>,
    entry: impl Fn(&Grant) -> GrantListEntry,
    limit: Option<u32>,
    marker: Option<&str>,
) -> Result<Page<GrantListEntry>> {
    crate::ops_keys::paginate(
        grants.map(|g| (g.grant_id.clone(), g)),
        limit,
        marker,
        is_grant_id,
    )
    .map(|p| Page {
        items: p.items.into_iter().map(|g| entry(g)).collect(),
        next_marker: p.next_marker,
    })
}

// ----- rows -----

fn encode_context(c: &Option<EncryptionContext>) -> Option<String> {
    c.as_ref()
        .map(|m| serde_json::to_string(m).expect("a string map always serializes"))
}

pub(crate) fn decode_context(text: Option<String>) -> Result<Option<EncryptionContext>> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|_| {
            Error::Internal("the store is corrupt: a malformed grant constraint".into())
        })
    })
    .transpose()
}

/// Writes a grant's row.
pub(crate) fn put_grant(tx: &Db<'_>, grant: &Grant) -> Result<()> {
    crate::store::pg::notify(tx, &grant.key_id.hyphenated().to_string())?;
    let ops: Vec<&str> = grant
        .operations
        .to_vec()
        .iter()
        .map(|o| o.as_str())
        .collect();
    let (equals, subset) = match &grant.constraints {
        Some(c) => (
            encode_context(&c.encryption_context_equals),
            encode_context(&c.encryption_context_subset),
        ),
        None => (None, None),
    };
    tx.execute(
        "INSERT INTO grants (grant_id, key_id, name, grantee, retiring, operations,
            context_equals, context_subset, issuing, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        &vals![
            &grant.grant_id,
            &*grant.key_id.hyphenated().to_string(),
            grant.name.as_deref(),
            &grant.grantee,
            grant.retiring.as_deref(),
            &*ops.join(","),
            equals.as_deref(),
            subset.as_deref(),
            &grant.issuing,
            grant.created
        ],
    )?;
    Ok(())
}

/// Deletes a grant's row.
pub(crate) fn delete_grant(tx: &Db<'_>, grant_id: &str) -> Result<()> {
    if tx.is_postgres() {
        let key: Option<String> = tx.first(
            "SELECT key_id FROM grants WHERE grant_id = ?1",
            &vals![grant_id],
            |r| r.get(0),
        )?;
        if let Some(key) = key {
            crate::store::pg::notify(tx, &key)?;
        }
    }
    tx.execute("DELETE FROM grants WHERE grant_id = ?1", &vals![grant_id])?;
    Ok(())
}

/// The columns [`from_row`] reads, in its order.
pub(crate) const GRANT_COLUMNS: &str = "grant_id, key_id, name, grantee, retiring, operations, \
    context_equals, context_subset, issuing, created";

/// A grant from a row of [`GRANT_COLUMNS`].
pub(crate) fn from_row(row: &Row<'_>) -> Result<Grant> {
    let corrupt = |what: &str| Error::Internal(format!("the store is corrupt: {what}"));
    let key_id = Uuid::parse_str(&row.get::<String>(1)?)
        .map_err(|_| corrupt("a grant with a malformed key id"))?;
    let ops = row
        .get::<String>(5)?
        .split(',')
        .map(GrantOperation::parse)
        .collect::<Result<Vec<_>>>()
        .map_err(|_| corrupt("a grant with an unknown operation"))?;
    let equals = decode_context(row.get(6)?)?;
    let subset = decode_context(row.get(7)?)?;
    let constraints = (equals.is_some() || subset.is_some()).then_some(GrantConstraints {
        encryption_context_equals: equals,
        encryption_context_subset: subset,
    });
    Ok(Grant::new(
        row.get(0)?,
        key_id,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        &ops,
        constraints,
        row.get(8)?,
        row.get(9)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use GrantOperation::*;

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
    const BOB: &str = "arn:aws:iam::111122223333:user/bob";

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn grant(
        id: u8,
        key: Uuid,
        grantee: &str,
        ops: &[GrantOperation],
        c: Option<GrantConstraints>,
    ) -> Grant {
        Grant::new(
            format!("{id:064x}"),
            key,
            None,
            grantee.into(),
            Some(BOB.into()),
            ops,
            c,
            "arn:aws:iam::111122223333:root".into(),
            0,
        )
    }

    fn subset(pairs: &[(&str, &str)]) -> Option<GrantConstraints> {
        Some(GrantConstraints {
            encryption_context_subset: Some(ctx(pairs)),
            ..Default::default()
        })
    }

    fn equals(pairs: &[(&str, &str)]) -> Option<GrantConstraints> {
        Some(GrantConstraints {
            encryption_context_equals: Some(ctx(pairs)),
            ..Default::default()
        })
    }

    #[test]
    fn operation_names_round_trip() {
        for op in GrantOperation::ALL {
            assert_eq!(GrantOperation::parse(op.as_str()).unwrap(), *op);
            assert_eq!(GrantOperation::for_action(&format!("kms:{op}")), Some(*op));
        }
        assert!(GrantOperation::parse("decrypt").is_err());
        assert_eq!(GrantOperation::for_action("kms:PutKeyPolicy"), None);
        assert_eq!(GrantOperation::for_action("Decrypt"), None);
    }

    #[test]
    fn constraints_subset_and_equals() {
        let key = Uuid::new_v4();
        let g = grant(
            1,
            key,
            ALICE,
            &[Decrypt, DescribeKey],
            subset(&[("Dept", "hr")]),
        );
        assert!(g.allows(Decrypt, Some(&ctx(&[("dept", "hr"), ("case", "7")]))));
        assert!(
            g.allows(Decrypt, Some(&ctx(&[("DEPT", "hr")]))),
            "keys are case-insensitive"
        );
        assert!(
            !g.allows(Decrypt, Some(&ctx(&[("dept", "HR")]))),
            "values are case-sensitive"
        );
        assert!(!g.allows(Decrypt, Some(&ctx(&[("dept", "it")]))));
        assert!(!g.allows(Decrypt, None));
        assert!(
            g.allows(DescribeKey, None),
            "no context: the constraint does not apply"
        );
        assert!(!g.allows(Encrypt, Some(&ctx(&[("dept", "hr")]))));
        let e = grant(2, key, ALICE, &[Encrypt], equals(&[("a", "1"), ("b", "2")]));
        assert!(e.allows(Encrypt, Some(&ctx(&[("B", "2"), ("a", "1")]))));
        assert!(!e.allows(Encrypt, Some(&ctx(&[("a", "1")]))));
        assert!(!e.allows(Encrypt, Some(&ctx(&[("a", "1"), ("b", "2"), ("c", "3")]))));
        let none = grant(3, key, ALICE, &[Encrypt], Some(GrantConstraints::default()));
        assert!(none.constraints.is_none(), "empty constraints are none");
        assert!(none.allows(Encrypt, None));
    }

    #[test]
    fn passing_on_needs_a_subset_and_stricter_constraints() {
        let key = Uuid::new_v4();
        let free = grant(1, key, ALICE, &[Decrypt, Encrypt, CreateGrant], None);
        assert!(free.may_pass_on(&[Decrypt], None));
        assert!(free.may_pass_on(&[Decrypt, CreateGrant], subset(&[("a", "1")]).as_ref()));
        assert!(!free.may_pass_on(&[Decrypt, Sign], None));
        let no_create = grant(2, key, ALICE, &[Decrypt], None);
        assert!(!no_create.may_pass_on(&[Decrypt], None));
        let sub = grant(
            3,
            key,
            ALICE,
            &[Decrypt, CreateGrant],
            subset(&[("a", "1")]),
        );
        assert!(!sub.may_pass_on(&[Decrypt], None), "looser: no constraint");
        assert!(sub.may_pass_on(&[Decrypt], subset(&[("A", "1"), ("b", "2")]).as_ref()));
        assert!(sub.may_pass_on(&[Decrypt], equals(&[("a", "1"), ("b", "2")]).as_ref()));
        assert!(!sub.may_pass_on(&[Decrypt], subset(&[("b", "2")]).as_ref()));
        assert!(!sub.may_pass_on(&[Decrypt], equals(&[("a", "2")]).as_ref()));
        let eq = grant(
            4,
            key,
            ALICE,
            &[Decrypt, CreateGrant],
            equals(&[("a", "1")]),
        );
        assert!(eq.may_pass_on(&[Decrypt], equals(&[("A", "1")]).as_ref()));
        assert!(!eq.may_pass_on(&[Decrypt], equals(&[("a", "1"), ("b", "2")]).as_ref()));
        assert!(!eq.may_pass_on(&[Decrypt], subset(&[("a", "1")]).as_ref()));
    }

    #[test]
    fn index_by_key_grantee_and_retiring() {
        let (k1, k2) = (Uuid::new_v4(), Uuid::new_v4());
        let mut grants = Grants::default();
        grants.insert(grant(1, k1, ALICE, &[Decrypt], None));
        grants.insert(grant(2, k1, BOB, &[Encrypt], None));
        grants.insert(grant(3, k2, ALICE, &[Encrypt], None));
        assert!(grants.allows(&k1, ALICE, Decrypt, None));
        assert!(!grants.allows(&k1, ALICE, Encrypt, None));
        assert!(grants.allows(&k2, ALICE, Encrypt, None));
        assert!(!grants.allows(&k2, BOB, Encrypt, None));
        assert_eq!(grants.count(&k1), 2);
        assert_eq!(grants.retirable_by(BOB, None).count(), 3);
        assert!(grants.remove(&format!("{:064x}", 1)).is_some());
        assert!(grants.remove(&format!("{:064x}", 1)).is_none());
        assert!(!grants.allows(&k1, ALICE, Decrypt, None));
        assert_eq!(grants.retirable_by(BOB, None).count(), 2);
        grants.forget_key(&k1);
        assert_eq!(grants.count(&k1), 0);
        assert!(grants.get(&format!("{:064x}", 2)).is_none());
        assert_eq!(grants.retirable_by(BOB, None).count(), 1);
        assert!(grants.get(&format!("{:064x}", 3)).is_some());
    }

    #[test]
    fn request_validation() {
        let ok = CreateGrantRequest {
            key_id: "k".into(),
            grantee_principal: ALICE.into(),
            operations: vec![Decrypt],
            ..Default::default()
        };
        let sym = (KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt);
        let ecc = (KeySpec::EccNistP256, KeyUsage::SignVerify);
        let hmac = (KeySpec::Hmac256, KeyUsage::GenerateVerifyMac);
        assert!(validate_request(&ok, sym.0, sym.1).is_ok());
        let check = |r: CreateGrantRequest, (s, u): (KeySpec, KeyUsage), expected: &str| {
            let e = validate_request(&r, s, u).unwrap_err();
            assert!(e.to_string().contains(expected), "{e}");
            assert_eq!(e.kms_name(), "ValidationException");
        };
        check(
            CreateGrantRequest {
                operations: vec![],
                ..ok.clone()
            },
            sym,
            "at least one",
        );
        check(ok.clone(), ecc, "not valid for a ECC_NIST_P256");
        check(
            CreateGrantRequest {
                operations: vec![Sign],
                ..ok.clone()
            },
            sym,
            "Sign is not valid",
        );
        check(
            CreateGrantRequest {
                operations: vec![GenerateDataKey],
                ..ok.clone()
            },
            hmac,
            "not valid",
        );
        assert!(validate_request(
            &CreateGrantRequest {
                operations: vec![Sign, GetPublicKey, DescribeKey],
                ..ok.clone()
            },
            ecc.0,
            ecc.1
        )
        .is_ok());
        check(
            CreateGrantRequest {
                name: Some("a b".into()),
                ..ok.clone()
            },
            sym,
            "grant name",
        );
        check(
            CreateGrantRequest {
                name: Some(String::new()),
                ..ok.clone()
            },
            sym,
            "grant name",
        );
        check(
            CreateGrantRequest {
                constraints: subset(&[("a", "1")]),
                operations: vec![Sign],
                ..ok.clone()
            },
            ecc,
            "only for symmetric",
        );
        check(
            CreateGrantRequest {
                constraints: subset(&[("a", "1")]),
                operations: vec![DescribeKey],
                ..ok.clone()
            },
            ecc,
            "only for symmetric",
        );
        let nine: Vec<(String, String)> = (0..9).map(|i| (format!("k{i}"), "v".into())).collect();
        let nine: Vec<(&str, &str)> = nine.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        check(
            CreateGrantRequest {
                constraints: subset(&nine),
                ..ok.clone()
            },
            sym,
            "1 to 8",
        );
        check(
            CreateGrantRequest {
                constraints: equals(&[("a", &"x".repeat(385))]),
                ..ok.clone()
            },
            sym,
            "at most 384",
        );
        check(
            CreateGrantRequest {
                grant_tokens: vec!["t".into(); 11],
                ..ok.clone()
            },
            sym,
            "at most 10 grant tokens",
        );
    }

    #[test]
    fn ids() {
        let id = new_grant_id().unwrap();
        assert!(is_grant_id(&id));
        assert_ne!(id, new_grant_id().unwrap());
        assert!(!is_grant_id(&id.to_uppercase()));
        assert!(!is_grant_id(&id[1..]));
    }
}

//! Who calls: the account every resource name belongs to, principals, and
//! the [`Caller`] a front door builds from what its transport proved (a
//! SigV4 access key, a Unix peer's uid, a client certificate).
//!
//! A process serves one account: key and alias ARNs are
//! `arn:aws:kms:<region>:<account>:key/<id>` and principals
//! `arn:aws:iam::<account>:root` / `arn:aws:iam::<account>:user/<name>`.
//! The first store opened installs its account for the process; opening a
//! store with another account in the same process is refused, so no ARN
//! can ever name the wrong account.

use std::sync::{Arc, RwLock};

use crate::error::{Error, Result};
use crate::types::printable;

/// The region used when none is configured.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The account id used when none is configured (AWS's documentation account).
pub const DEFAULT_ACCOUNT_ID: &str = "111122223333";

/// The account and region every resource name of this process names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// A region name such as `us-east-1`: 1 to 32 of `[a-z0-9-]`.
    pub region: String,
    /// Twelve decimal digits.
    pub account_id: String,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            region: DEFAULT_REGION.to_string(),
            account_id: DEFAULT_ACCOUNT_ID.to_string(),
        }
    }
}

impl Account {
    /// An account after checking both parts' syntax.
    pub fn new(region: &str, account_id: &str) -> Result<Account> {
        let region_ok = !region.is_empty()
            && region.len() <= 32
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !region_ok {
            return Err(Error::validation(format!(
                "region {} must be 1 to 32 of a-z, 0-9 and -",
                printable(region)
            )));
        }
        if account_id.len() != 12 || !account_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::validation(format!(
                "account id {} must be 12 digits",
                printable(account_id)
            )));
        }
        Ok(Account {
            region: region.to_string(),
            account_id: account_id.to_string(),
        })
    }

    /// `arn:aws:kms:<region>:<account>:`, the prefix of key and alias ARNs.
    pub fn kms_arn_prefix(&self) -> String {
        format!("arn:aws:kms:{}:{}:", self.region, self.account_id)
    }

    /// `arn:aws:iam::<account>:root`, the account's administrators.
    pub fn root_arn(&self) -> String {
        format!("arn:aws:iam::{}:root", self.account_id)
    }
}

/// The process's account; `None` until a store is opened.
static INSTALLED: RwLock<Option<Arc<InstalledAccount>>> = RwLock::new(None);

/// An account with its ARN prefix formatted once.
#[derive(Debug)]
pub(crate) struct InstalledAccount {
    pub account: Account,
    pub kms_prefix: String,
}

/// Makes `account` the process's account. Installing the same account
/// again is fine; another one is refused.
pub(crate) fn install(account: &Account) -> Result<()> {
    let mut installed = INSTALLED.write().unwrap_or_else(|e| e.into_inner());
    match installed.as_ref() {
        Some(current) if current.account == *account => Ok(()),
        Some(current) => Err(Error::validation(format!(
            "this process already serves account {} in {}; one account per process",
            current.account.account_id, current.account.region
        ))),
        None => {
            *installed = Some(Arc::new(InstalledAccount {
                kms_prefix: account.kms_arn_prefix(),
                account: account.clone(),
            }));
            Ok(())
        }
    }
}

/// The process's account (the default one before any store was opened).
pub(crate) fn installed() -> Arc<InstalledAccount> {
    if let Some(current) = INSTALLED.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Arc::clone(current);
    }
    let account = Account::default();
    Arc::new(InstalledAccount {
        kms_prefix: account.kms_arn_prefix(),
        account,
    })
}

/// Whom a call acts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// The account's administrators (`arn:aws:iam::<account>:root`): root
    /// and the daemon's own uid on the socket, root access keys, the
    /// embedded PKCS#11 backend that holds the passphrase.
    Root,
    /// A named user (`arn:aws:iam::<account>:user/<name>`).
    User(String),
    /// Tinfoil itself: background rotation and deletion.
    Service,
}

impl Principal {
    /// The principal's ARN in `account`.
    pub fn arn_in(&self, account: &Account) -> String {
        match self {
            Principal::Root => account.root_arn(),
            Principal::User(name) => format!("arn:aws:iam::{}:user/{name}", account.account_id),
            Principal::Service => "kms.amazonaws.com".to_string(),
        }
    }

    /// The principal's ARN in the process's account.
    pub fn arn(&self) -> String {
        self.arn_in(&installed().account)
    }

    /// Whether this principal is one of the account's administrators.
    pub fn is_administrator(&self) -> bool {
        matches!(self, Principal::Root)
    }
}

/// A call's caller, as the front door proved it. Never built from what a
/// request says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Whom the call acts for.
    pub principal: Principal,
    /// The access key a SigV4 request was signed with.
    pub access_key_id: Option<String>,
    /// Where the call came from: an IP address for TCP,
    /// `unix:uid=N,pid=N` for the socket, `embedded` in-process.
    pub source: String,
    /// The client's User-Agent, when it sent one.
    pub user_agent: Option<String>,
}

impl Caller {
    /// A caller with no access key and no user agent.
    pub fn new(principal: Principal, source: impl Into<String>) -> Caller {
        Caller {
            principal,
            access_key_id: None,
            source: source.into(),
            user_agent: None,
        }
    }

    /// Tinfoil itself, for background work.
    pub fn service() -> Caller {
        Caller::new(Principal::Service, "tinfoil")
    }
}

/// The name rules of users: 1 to 64 of `[A-Za-z0-9+=,.@_-]`, as IAM.
pub(crate) fn validate_user_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !ok {
        return Err(Error::validation(format!(
            "user name {} must be 1 to 64 of A-Z, a-z, 0-9 and +=,.@_-",
            printable(name)
        )));
    }
    if name.eq_ignore_ascii_case("root") {
        return Err(Error::validation(
            "root names the account's administrators, not a user",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_syntax_is_checked() {
        assert!(Account::new("us-east-1", "111122223333").is_ok());
        assert!(Account::new("", "111122223333").is_err());
        assert!(Account::new("US-EAST-1", "111122223333").is_err());
        assert!(Account::new("us-east-1", "1111222233").is_err());
        assert!(Account::new("us-east-1", "11112222333a").is_err());
    }

    #[test]
    fn principal_arns() {
        let account = Account::default();
        assert_eq!(
            Principal::Root.arn_in(&account),
            "arn:aws:iam::111122223333:root"
        );
        assert_eq!(
            Principal::User("alice".into()).arn_in(&account),
            "arn:aws:iam::111122223333:user/alice"
        );
    }

    #[test]
    fn user_names_follow_iam_rules() {
        assert!(validate_user_name("alice.smith@example").is_ok());
        assert!(validate_user_name("").is_err());
        assert!(validate_user_name("root").is_err());
        assert!(validate_user_name("a b").is_err());
        assert!(validate_user_name(&"a".repeat(65)).is_err());
    }
}

//! Wildcard patterns (`*` any run, `?` one character) compiled once when a
//! policy is parsed, so evaluation compares without allocating.

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `*`: matches everything.
    Any,
    /// No wildcard: the whole string.
    Exact(Box<str>),
    /// `text*` with no other wildcard.
    Prefix(Box<str>),
    /// Anything else: matched character by character.
    Glob(Box<[char]>),
}

impl Pattern {
    /// Compiles `text`; with `fold`, the pattern is lower-cased and must be
    /// matched with [`Pattern::matches_folded`] (ASCII case-insensitive).
    pub fn new(text: &str, fold: bool) -> Pattern {
        let text = if fold {
            text.to_ascii_lowercase()
        } else {
            text.to_owned()
        };
        if text == "*" {
            return Pattern::Any;
        }
        let stars = text.matches('*').count();
        let has_q = text.contains('?');
        if stars == 0 && !has_q {
            Pattern::Exact(text.into())
        } else if stars == 1 && !has_q && text.ends_with('*') {
            Pattern::Prefix(text[..text.len() - 1].into())
        } else {
            Pattern::Glob(text.chars().collect())
        }
    }

    /// Case-sensitive match of `s`.
    pub fn matches(&self, s: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(e) => **e == *s,
            Pattern::Prefix(p) => s.starts_with(&**p),
            Pattern::Glob(g) => glob(g, s, false),
        }
    }

    /// ASCII case-insensitive match of `s` against a pattern compiled with
    /// `fold`.
    pub fn matches_folded(&self, s: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(e) => e.eq_ignore_ascii_case(s),
            Pattern::Prefix(p) => {
                s.len() >= p.len()
                    && s.is_char_boundary(p.len())
                    && s[..p.len()].eq_ignore_ascii_case(p)
            }
            Pattern::Glob(g) => glob(g, s, true),
        }
    }
}

/// Iterative wildcard match with single-star backtracking: O(len(p) x len(s))
/// at worst, linear in the usual cases, no recursion.
fn glob(p: &[char], s: &str, fold: bool) -> bool {
    let s: Vec<char> = s.chars().collect();
    let eq = |a: char, b: char| {
        if fold {
            a == b.to_ascii_lowercase()
        } else {
            a == b
        }
    };
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || eq(p[pi], s[si])) {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shapes() {
        assert_eq!(Pattern::new("*", false), Pattern::Any);
        assert_eq!(
            Pattern::new("kms:Encrypt", true),
            Pattern::Exact("kms:encrypt".into())
        );
        assert_eq!(
            Pattern::new("kms:Describe*", true),
            Pattern::Prefix("kms:describe".into())
        );
        assert!(matches!(Pattern::new("kms:*Key", true), Pattern::Glob(_)));
    }

    #[test]
    fn matching() {
        let p = Pattern::new("kms:ReEncrypt*", true);
        assert!(p.matches_folded("kms:ReEncryptFrom"));
        assert!(p.matches_folded("KMS:reencryptto"));
        assert!(!p.matches_folded("kms:Encrypt"));
        let g = Pattern::new("kms:Gen?rate*Pair*", true);
        assert!(g.matches_folded("kms:GenerateDataKeyPairWithoutPlaintext"));
        assert!(!g.matches_folded("kms:GenerateDataKey"));
        let c = Pattern::new("a*b?c", false);
        assert!(c.matches("aXXbYc"));
        assert!(c.matches("abbc"));
        assert!(!c.matches("aXXbc"));
        assert!(!c.matches("AXXbYc"));
        assert!(Pattern::new("**", false).matches(""));
        assert!(!Pattern::new("?", false).matches(""));
        assert!(Pattern::new("é?", false).matches("éü"));
        assert!(!Pattern::new("ab*", true).matches_folded("aé"));
    }

    /// A regex-free reference: recursive definition of the same language.
    fn reference(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| reference(rest, &s[i..])),
            Some((&c, rest)) => match s.split_first() {
                Some((&d, srest)) => (c == '?' || c == d) && reference(rest, srest),
                None => false,
            },
        }
    }

    proptest! {
        #[test]
        fn glob_matches_reference(p in "[ab*?]{0,8}", s in "[ab]{0,10}") {
            let pc: Vec<char> = p.chars().collect();
            let sc: Vec<char> = s.chars().collect();
            prop_assert_eq!(Pattern::new(&p, false).matches(&s), reference(&pc, &sc));
            prop_assert_eq!(Pattern::new(&p, true).matches_folded(&s.to_uppercase()), reference(&pc, &sc));
        }
    }
}

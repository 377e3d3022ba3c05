//! Interned names: the analytics carry categories, countries and poster names as 64-bit
//! digests, so differential's sorts and merges compare integers, not strings. The digest is
//! a pure function of the text (the same on every worker), and a process-wide dictionary turns
//! digests back into text when results are published.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, RwLock};

use serde::{Deserialize, Serialize};

/// A name (category, country, poster), or null.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Name(u64);

impl Name {
    pub const NULL: Name = Name(0);

    pub fn is_null(self) -> bool {
        self == Name::NULL
    }
}

static DICTIONARY: LazyLock<RwLock<HashMap<u64, Arc<str>>>> = LazyLock::new(Default::default);

thread_local! {
    /// Digests this thread already put in the dictionary: the common case takes no lock.
    static KNOWN: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
}

/// The name of `text` (`None`: null), remembered for [`text`].
pub fn intern(text: Option<&str>) -> Name {
    let Some(text) = text else { return Name::NULL };
    // 64-bit digests of up to millions of names: a collision is ~1e-7 likely at 1M names.
    let digest = xxhash_rust::xxh3::xxh3_64(text.as_bytes()).max(1);
    let known = KNOWN.with(|known| !known.borrow_mut().insert(digest));
    if !known {
        DICTIONARY
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(digest)
            .or_insert_with(|| Arc::from(text));
    }
    Name(digest)
}

/// The text of a name (`None` for null).
pub fn text(name: Name) -> Option<String> {
    if name.is_null() {
        return None;
    }
    DICTIONARY
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&name.0)
        .map(|text| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_across_threads() {
        let art = intern(Some("art"));
        assert_eq!(
            art,
            std::thread::spawn(|| intern(Some("art"))).join().unwrap()
        );
        assert_eq!(text(art).as_deref(), Some("art"));
        assert_eq!(intern(None), Name::NULL);
        assert_eq!(text(Name::NULL), None);
        assert_ne!(intern(Some("")), Name::NULL);
    }
}

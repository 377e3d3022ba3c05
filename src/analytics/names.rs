//! Names (categories, countries, posters) as 64-bit digests, and how their text reaches the
//! publisher.
//!
//! The analytics carry names as digests so differential's sorts, joins and merges compare
//! integers, not strings: a [`Fact`](super::facts::Fact) stays a few words whatever its text.
//! The digest is a pure function of the text, the same on every worker and every process.
//!
//! The text travels apart from the facts, once per worker: the `route` operator keeps a
//! [`NameSender`] that notes each name the first time that worker sees it, and sends it as a
//! `Signal::Name` to the publisher, whose [`Dictionary`] turns digests back into text. No
//! process-wide table: a job spread over several processes publishes on one of them, which
//! could not read another process's table, but does receive every worker's signals. A name's
//! signal has the time of the first fact that carried it, so the publisher, which waits for
//! both its inputs to pass a time, always knows the text of every name it publishes.

use std::sync::Arc;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde::{Deserialize, Serialize};

/// A name (category, country, poster), or null.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Name(u64);

impl Name {
    pub const NULL: Name = Name(0);

    /// The name of `text` (`None`: null).
    pub fn of(text: Option<&str>) -> Name {
        // 64-bit digests of up to millions of names: a collision is ~1e-7 likely at 1M names.
        text.map_or(Name::NULL, |text| {
            Name(xxhash_rust::xxh3::xxh3_64(text.as_bytes()).max(1))
        })
    }

    pub fn is_null(self) -> bool {
        self == Name::NULL
    }
}

/// One worker's names: each text is sent to the publisher the first time this worker sees it.
#[derive(Default)]
pub struct NameSender {
    sent: HashSet<Name>,
    new: Vec<(Name, String)>,
}

impl NameSender {
    /// The name of `text`, noted for [`NameSender::take_new`] if this worker had not seen it.
    pub fn name(&mut self, text: Option<&str>) -> Name {
        let name = Name::of(text);
        if let Some(text) = text
            && self.sent.insert(name)
        {
            self.new.push((name, text.to_owned()));
        }
        name
    }

    /// The names first seen since the last call, with their text.
    pub fn take_new(&mut self) -> Vec<(Name, String)> {
        std::mem::take(&mut self.new)
    }
}

/// The publisher's digest -> text table, filled from the names workers send.
#[derive(Default)]
pub struct Dictionary {
    texts: HashMap<Name, Arc<str>>,
}

impl Dictionary {
    pub fn insert(&mut self, name: Name, text: String) {
        self.texts.entry(name).or_insert_with(|| text.into());
    }

    /// The text of a name (`None` for null), shared (a published row holds it many times over).
    pub fn text(&self, name: Name) -> Option<Arc<str>> {
        let text = self.texts.get(&name).cloned();
        if text.is_none() && !name.is_null() {
            tracing::warn!(?name, "a name was published before its text arrived");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_digests_and_each_text_is_sent_once() {
        let mut sender = NameSender::default();
        let art = sender.name(Some("art"));
        assert_eq!(art, Name::of(Some("art")));
        assert_eq!(sender.name(Some("art")), art);
        assert_eq!(sender.name(None), Name::NULL);
        assert_ne!(sender.name(Some("")), Name::NULL);
        let new = sender.take_new();
        assert_eq!(
            new,
            vec![(art, "art".to_owned()), (Name::of(Some("")), String::new())]
        );
        assert!(sender.take_new().is_empty());

        let mut dictionary = Dictionary::default();
        for (name, text) in new {
            dictionary.insert(name, text);
        }
        assert_eq!(dictionary.text(art).as_deref(), Some("art"));
        assert_eq!(dictionary.text(Name::NULL), None);
    }
}

//! The words posts are made of: data files beside this one, one entry per line, written for
//! the emulator (nothing taken from the sample). Each list is read from the binary once, on
//! first use, and never changes after.
//!
//! Order matters: a draw is an index into a list, so reordering, adding or removing a line
//! changes the bytes of every seed. Names and countries run (roughly) alphabetically because the
//! sample's are skewed to the start of the alphabet (see [`super::calibration`]).

use std::sync::LazyLock;

use super::calibration::CATEGORIES;

/// One entry per line.
fn lines(text: &'static str) -> Vec<&'static str> {
    text.lines().collect()
}

/// A word list kept as data: `list!("adjectives.txt")`.
macro_rules! list {
    ($file:literal) => {
        LazyLock::new(|| lines(include_str!($file)))
    };
}

/// Title fragments: `{A}` adjective, `{T}` topic, `{S}` suffix, `{N}` number, `{V}` verb,
/// `{U}` audience, `{W}` season.
pub(super) static TITLE_PARTS: LazyLock<Vec<&str>> = list!("title_parts.txt");
/// Description sentences: lower-case slots `{a}` `{t}` `{t2}` `{v}` `{u}` `{w}` `{p}` `{n}`.
pub(super) static SENTENCES: LazyLock<Vec<&str>> = list!("sentences.txt");
pub(super) static ADJECTIVES: LazyLock<Vec<&str>> = list!("adjectives.txt");
pub(super) static SUFFIXES: LazyLock<Vec<&str>> = list!("suffixes.txt");
pub(super) static AUDIENCES: LazyLock<Vec<&str>> = list!("audiences.txt");
pub(super) static SEASONS: LazyLock<Vec<&str>> = list!("seasons.txt");
pub(super) static PLACES: LazyLock<Vec<&str>> = list!("places.txt");
pub(super) static VERBS: LazyLock<Vec<&str>> = list!("verbs.txt");
/// Words poster names of brand accounts are glued from.
pub(super) static BRAND_WORDS: LazyLock<Vec<&str>> = list!("brand_words.txt");
/// Kinds of brand accounts.
pub(super) static BRAND_KINDS: LazyLock<Vec<&str>> = list!("brand_kinds.txt");
/// First names, alphabetical.
pub(super) static FIRST_NAMES: LazyLock<Vec<&str>> = list!("first_names.txt");
/// Last names, alphabetical.
pub(super) static LAST_NAMES: LazyLock<Vec<&str>> = list!("last_names.txt");
/// Country names in the Faker style, in Faker's (nearly alphabetical) order.
pub(super) static COUNTRIES: LazyLock<Vec<&str>> = list!("countries.txt");

/// Topics per category, in the order of [`CATEGORIES`]. `topics.txt` holds one line per
/// category, `<category>: <topic>,<topic>,...`; a category without its line is a broken build,
/// caught by the tests below before any post is made.
pub(super) static TOPICS: LazyLock<Vec<Vec<&str>>> = LazyLock::new(|| {
    let by_category: Vec<(&str, &str)> = lines(include_str!("topics.txt"))
        .into_iter()
        .filter_map(|line| line.split_once(": "))
        .collect();
    CATEGORIES
        .iter()
        .map(|(category, _)| {
            let (_, topics) = by_category
                .iter()
                .find(|(name, _)| name == category)
                .unwrap_or_else(|| panic!("words/topics.txt has no line for {category}"));
            topics.split(',').collect()
        })
        .collect()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_is_clean_and_every_category_has_topics() {
        for (name, list) in [
            ("title_parts", &TITLE_PARTS),
            ("sentences", &SENTENCES),
            ("adjectives", &ADJECTIVES),
            ("suffixes", &SUFFIXES),
            ("audiences", &AUDIENCES),
            ("seasons", &SEASONS),
            ("places", &PLACES),
            ("verbs", &VERBS),
            ("brand_words", &BRAND_WORDS),
            ("brand_kinds", &BRAND_KINDS),
            ("first_names", &FIRST_NAMES),
            ("last_names", &LAST_NAMES),
            ("countries", &COUNTRIES),
        ] {
            assert!(!list.is_empty(), "{name}");
            for entry in list.iter() {
                assert!(
                    !entry.is_empty() && entry.trim() == *entry,
                    "{name}: {entry:?}"
                );
            }
        }
        assert_eq!(TOPICS.len(), CATEGORIES.len());
        for topics in TOPICS.iter() {
            assert_eq!(topics.len(), 20);
            assert!(topics.iter().all(|t| !t.is_empty() && t.trim() == *t));
        }
    }
}

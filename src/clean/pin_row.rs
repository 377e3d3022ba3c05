//! A row of table `pin`, its nine text columns held in one buffer.
//!
//! With a `String` per column, a pin row cost nine allocations when cleaned and nine frees
//! where its data file was encoded (on another thread, so each free went back to the worker's
//! arena), and the encoder gathered each column from nine places per row. One buffer per row
//! makes that one allocation, one free and one place.
//!
//! Its equality, order, hash (hence its [`crate::table::Identity`]) and serde form are those
//! it had with a `String` per column: field by field in table order, as [`PinFields`] (that
//! row, for writing one out by hand) has them.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The text columns of table `pin`, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinText {
    UniqueId,
    Title,
    Description,
    PosterName,
    TagList,
    IsImageOrVideo,
    ImageSrc,
    SaveLocation,
    Category,
}

impl PinText {
    pub const COUNT: usize = 9;

    /// Every text column, in table order.
    pub const ALL: [PinText; PinText::COUNT] = [
        PinText::UniqueId,
        PinText::Title,
        PinText::Description,
        PinText::PosterName,
        PinText::TagList,
        PinText::IsImageOrVideo,
        PinText::ImageSrc,
        PinText::SaveLocation,
        PinText::Category,
    ];

    /// The column's name in table `pin`.
    pub fn name(self) -> &'static str {
        match self {
            PinText::UniqueId => "unique_id",
            PinText::Title => "title",
            PinText::Description => "description",
            PinText::PosterName => "poster_name",
            PinText::TagList => "tag_list",
            PinText::IsImageOrVideo => "is_image_or_video",
            PinText::ImageSrc => "image_src",
            PinText::SaveLocation => "save_location",
            PinText::Category => "category",
        }
    }
}

/// The texts of a pin row in table order ([`PinText`]); `None` is null.
pub type PinTexts<'a> = [Option<&'a str>; PinText::COUNT];

/// A row of table `pin` (SPEC §2). Build it with [`PinRow::new`] (or from [`PinFields`]), read
/// its texts with the accessors.
/// Equal when their columns are: the buffer, ends and nulls of a row are made from its columns
/// and nothing else.
#[derive(Clone, PartialEq, Eq)]
pub struct PinRow {
    pub ind: i64,
    pub follower_count: i64,
    /// The non-null texts one after another.
    buffer: String,
    /// Where each text ends in `buffer`.
    ends: [usize; PinText::COUNT],
    /// Bit `i` set: text `i` is null.
    nulls: u16,
}

impl PinRow {
    /// A row of these columns. A `unique_id` of `None` reads as the empty text (a clean row
    /// always has one).
    pub fn new(ind: i64, follower_count: i64, texts: PinTexts<'_>) -> PinRow {
        let mut row = PinRow {
            ind,
            follower_count,
            buffer: String::new(),
            ends: [0; PinText::COUNT],
            nulls: 0,
        };
        row.set_texts(texts);
        row
    }

    /// Replaces the texts, reusing the buffer.
    pub fn set_texts(&mut self, texts: PinTexts<'_>) {
        self.buffer.clear();
        self.buffer
            .reserve(texts.iter().map(|text| text.map_or(0, str::len)).sum());
        self.nulls = 0;
        for (i, text) in texts.into_iter().enumerate() {
            match text {
                Some(text) => self.buffer.push_str(text),
                None => self.nulls |= 1 << i,
            }
            self.ends[i] = self.buffer.len();
        }
    }

    /// Text `column`, `None` when null.
    pub fn text(&self, column: PinText) -> Option<&str> {
        let i = column as usize;
        if self.nulls & (1 << i) != 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        // SAFETY: `set_texts` (the only writer of `ends` and `buffer`) sets each end to the
        // buffer's length right after pushing a whole `&str`, so every end, and 0, is a char
        // boundary within the buffer, and the ends never decrease. Checking that again cost
        // as much as the rest of this accessor, which runs for every text of every row when
        // it is hashed and when it is encoded.
        Some(unsafe { self.buffer.get_unchecked(start..self.ends[i]) })
    }

    pub fn unique_id(&self) -> &str {
        self.text(PinText::UniqueId).unwrap_or_default()
    }
    pub fn title(&self) -> Option<&str> {
        self.text(PinText::Title)
    }
    pub fn description(&self) -> Option<&str> {
        self.text(PinText::Description)
    }
    pub fn poster_name(&self) -> Option<&str> {
        self.text(PinText::PosterName)
    }
    pub fn tag_list(&self) -> Option<&str> {
        self.text(PinText::TagList)
    }
    pub fn is_image_or_video(&self) -> Option<&str> {
        self.text(PinText::IsImageOrVideo)
    }
    pub fn image_src(&self) -> Option<&str> {
        self.text(PinText::ImageSrc)
    }
    pub fn save_location(&self) -> Option<&str> {
        self.text(PinText::SaveLocation)
    }
    pub fn category(&self) -> Option<&str> {
        self.text(PinText::Category)
    }

    /// The row's columns in table order, borrowed: what its order, hash, `Debug` and serde
    /// form are of.
    fn columns(&self) -> PinFields<&str> {
        PinFields {
            ind: self.ind,
            unique_id: self.unique_id(),
            title: self.title(),
            description: self.description(),
            follower_count: self.follower_count,
            poster_name: self.poster_name(),
            tag_list: self.tag_list(),
            is_image_or_video: self.is_image_or_video(),
            image_src: self.image_src(),
            save_location: self.save_location(),
            category: self.category(),
        }
    }
}

/// A pin row with a text per column (table order): owned (`PinFields`, the default) for
/// writing one out by hand, borrowed from a [`PinRow`] (`PinFields<&str>`) for comparing,
/// hashing, printing and serializing it. The derived order and hash go field by field, and
/// `Option<&str>` orders and hashes as `Option<String>`, so both forms give the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PinFields<S = String> {
    pub ind: i64,
    pub unique_id: S,
    pub title: Option<S>,
    pub description: Option<S>,
    pub follower_count: i64,
    pub poster_name: Option<S>,
    pub tag_list: Option<S>,
    pub is_image_or_video: Option<S>,
    pub image_src: Option<S>,
    pub save_location: Option<S>,
    pub category: Option<S>,
}

impl From<PinFields> for PinRow {
    fn from(fields: PinFields) -> PinRow {
        PinRow::new(
            fields.ind,
            fields.follower_count,
            [
                Some(&fields.unique_id),
                fields.title.as_deref(),
                fields.description.as_deref(),
                fields.poster_name.as_deref(),
                fields.tag_list.as_deref(),
                fields.is_image_or_video.as_deref(),
                fields.image_src.as_deref(),
                fields.save_location.as_deref(),
                fields.category.as_deref(),
            ],
        )
    }
}

impl PartialOrd for PinRow {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PinRow {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.columns().cmp(&other.columns())
    }
}

impl Hash for PinRow {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.columns().hash(state)
    }
}

impl fmt::Debug for PinRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.columns().fmt(f)
    }
}

impl Serialize for PinRow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.columns().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PinRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PinRow, D::Error> {
        PinFields::deserialize(deserializer).map(PinRow::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[a-c\u{e9}]{0,3}")
    }

    prop_compose! {
        fn fields()(
            ind in -2i64..3,
            follower_count in 0i64..3,
            unique_id in "[a-c]{0,3}",
            texts in proptest::collection::vec(text(), 8),
        ) -> PinFields {
            let mut texts = texts.into_iter();
            let mut next = || texts.next().unwrap();
            PinFields {
                ind,
                unique_id,
                title: next(),
                description: next(),
                follower_count,
                poster_name: next(),
                tag_list: next(),
                is_image_or_video: next(),
                image_src: next(),
                save_location: next(),
                category: next(),
            }
        }
    }

    /// The hash bytes of `value` (the identity of a row is the XXH3 of these).
    fn hash_bytes(value: &impl Hash) -> Vec<u8> {
        struct Bytes(Vec<u8>);
        impl Hasher for Bytes {
            fn finish(&self) -> u64 {
                0
            }
            fn write(&mut self, bytes: &[u8]) {
                self.0.extend_from_slice(bytes);
            }
        }
        let mut bytes = Bytes(Vec::new());
        value.hash(&mut bytes);
        bytes.0
    }

    /// The row with a `String` per column as it was: what a pin row's order, hash and serde
    /// form must stay equal to.
    #[derive(PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
    struct Reference(
        i64,
        String,
        Option<String>,
        Option<String>,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );

    fn reference(f: &PinFields) -> Reference {
        let f = f.clone();
        Reference(
            f.ind,
            f.unique_id,
            f.title,
            f.description,
            f.follower_count,
            f.poster_name,
            f.tag_list,
            f.is_image_or_video,
            f.image_src,
            f.save_location,
            f.category,
        )
    }

    proptest! {
        #[test]
        fn reads_back_compares_hashes_and_serializes_as_its_fields(a in fields(), b in fields()) {
            let (row_a, row_b) = (PinRow::from(a.clone()), PinRow::from(b.clone()));
            prop_assert_eq!(row_a.title(), a.title.as_deref());
            prop_assert_eq!(row_a.category(), a.category.as_deref());
            prop_assert_eq!(row_a.unique_id(), a.unique_id.as_str());
            prop_assert_eq!(row_a == row_b, a == b);
            prop_assert_eq!(row_a.cmp(&row_b), reference(&a).cmp(&reference(&b)));
            prop_assert_eq!(hash_bytes(&row_a), hash_bytes(&reference(&a)));
            let json = serde_json::to_string(&row_a).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&a).unwrap());
            prop_assert_eq!(serde_json::from_str::<PinRow>(&json).unwrap(), row_a.clone());
            let mut reused = row_b.clone();
            reused.set_texts(PinText::ALL.map(|column| row_a.text(column)));
            reused.ind = row_a.ind;
            reused.follower_count = row_a.follower_count;
            prop_assert_eq!(reused, row_a);
        }
    }

    #[test]
    fn null_and_empty_texts_differ() {
        let empty = PinFields {
            title: Some(String::new()),
            ..PinFields::default()
        };
        let row = PinRow::from(empty.clone());
        assert_eq!(row.title(), Some(""));
        assert_eq!(row.description(), None);
        assert_ne!(row, PinRow::from(PinFields::default()));
        assert_ne!(
            hash_bytes(&row),
            hash_bytes(&PinRow::from(PinFields::default()))
        );
    }
}

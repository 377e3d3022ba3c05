//! Calibration: the shape of the real data the generator imitates, and where each number
//! comes from. Change a constant and every generated post changes with it.
//!
//! Measured on the 2,178 real rows of `data/pinterest-sample/` (statistics only, no rows copied):
//!
//! pin
//! - `follower_count`: digits 393, `Nk` 1601, `NM` 167, `User Info Error` 17. The same poster
//!   keeps its count (5 of 282 repeated posters vary), so counts belong to posters: 1,206
//!   posters appear once (rows: k 839, digits 336, M 31), 282 repeat and cover 955 rows (rows:
//!   k 762, M 136, digits 57; the busiest poster has 46 rows). Modelled as a Zipf(0.8) "head" of
//!   `universe / 8` posters drawing 44.2 % of the posts, and one fresh poster per other post.
//!   Number quantiles (5 % steps) are in [`DIGITS_Q`], [`K_HEAD_Q`], [`K_TAIL_Q`]; the `M`
//!   values in [`M_HEAD`], [`M_TAIL`].
//! - `is_image_or_video`: image 1957, video 66, `multi-video(story page format)` 155.
//! - Null markers, and how they co-occur (every one checked):
//!   - all 155 multi-video posts have description `No description available Story format`
//!     (and no other post has it);
//!   - 17 of them are "broken": title `No Title Data Available`, poster_name and
//!     follower_count `User Info Error`, tag_list `N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e`,
//!     image_src `Image src error.`, downloaded 0 - always together;
//!   - 37 more multi-video posts have `Image src error.` (54 in all); downloaded is 0 exactly
//!     when image_src is `Image src error.`;
//!   - 1 multi-video post has an empty title, 1 has the no-tags marker;
//!   - among the 2,023 image/video posts: description `No description available` 32, no-tags
//!     marker 14 (32 no-tags in all).
//! - `category`: art 188, beauty 145, christmas 216, diy-and-crafts 162, education 164,
//!   event-planning 158, finance 173, home-decor 150, mens-fashion 169, quotes 175, tattoos
//!   168, travel 169, vehicles 141; `save_location` is always `Local save in /data/<category>`.
//! - `unique_id`: always a lowercase UUID v4. `image_src`: for images
//!   `https://i.pinimg.com/originals/ab/cd/ef/abcdef<26 hex>.<ext>` with ext jpg 1624, png 319,
//!   webp 11, gif 3; for (multi-)videos `.../videos/thumbnails/originals/.../<32 hex>.0000001.jpg`.
//! - Text shape: title words (quantiles 5 %) [`TITLE_WORDS_Q`]; tags: 9 per list in 2,142 of
//!   2,146 lists, 2 words per tag typically; descriptions: 799 of 1,991 real ones are cut at
//!   178-179 characters ending in `…` + no-break space, the others have [`DESC_WORDS_Q`] words.
//!
//! geo
//! - `timestamp` uniform over 2017-10-20 .. 2022-10-18 (per-year counts flat).
//! - `latitude`, `longitude`: rounded to 6 significant digits (hence 4 decimals for most
//!   latitudes, 3 for most longitudes, trailing zeros dropped); both strongly skewed towards
//!   their minimum (median latitude -62.9, median longitude -122.2) with the shape in
//!   [`SKEW_Q`]; correlation lat/lon 0.46.
//! - `country`: 237 distinct Faker-style names, skewed to the start of the alphabet with the
//!   same shape (Albania, Algeria, Afghanistan, Aruba... most frequent).
//!
//! user
//! - `age` 20..60, histogram [`AGE_HIST`] (20: 412, 21: 239, ..., 60: 13).
//! - `date_joined` 2015-10-21 .. 2017-10-18, skewed to the start with the [`SKEW_Q`] shape;
//!   correlation age/date_joined 0.48. Names skewed to the start of the alphabet as well.
//!
//! Skew and correlations are reproduced by drawing a position `u` in [0, 1), mapping it through
//! [`SKEW_Q`], and reusing the same `u` for the correlated field half of the time.

use chrono::NaiveDate;

/// Shape of the skewed fields, as quantiles at 0, 5, ..., 100 % of a position in [0, 1]
/// (mean of the normalised latitude, longitude and date_joined quantiles of the sample).
pub(super) const SKEW_Q: [f64; 21] = [
    0.0, 0.0031, 0.0070, 0.0151, 0.0261, 0.0369, 0.0512, 0.0723, 0.0970, 0.1240, 0.1559, 0.1938,
    0.2336, 0.2899, 0.3458, 0.4284, 0.5185, 0.6192, 0.7392, 0.8605, 1.0,
];
/// `follower_count` given as plain digits: quantiles at 0, 5, ..., 100 %.
pub(super) const DIGITS_Q: [f64; 21] = [
    0.0, 2.0, 5.0, 8.0, 20.0, 27.0, 34.0, 50.0, 82.0, 121.0, 157.0, 184.0, 214.0, 259.0, 322.0,
    392.0, 458.0, 579.0, 765.0, 873.0, 999.0,
];
/// `Nk` values of repeated posters (per poster).
pub(super) const K_HEAD_Q: [f64; 21] = [
    1.0, 4.0, 7.0, 11.0, 17.0, 21.0, 27.0, 34.0, 42.0, 52.0, 64.0, 79.0, 98.0, 119.0, 150.0, 214.0,
    277.0, 388.0, 502.0, 723.0, 999.0,
];
/// `Nk` values of one-off posters.
pub(super) const K_TAIL_Q: [f64; 21] = [
    1.0, 2.0, 2.0, 4.0, 5.0, 6.0, 7.0, 10.0, 13.0, 17.0, 21.0, 27.0, 32.0, 41.0, 55.0, 75.0, 102.0,
    139.0, 227.0, 398.0, 999.0,
];
/// `NM` values (value, weight): rows of repeated posters, and one-off posters.
pub(super) const M_HEAD: [(u32, u32); 8] = [
    (1, 29),
    (2, 73),
    (3, 9),
    (4, 11),
    (5, 35),
    (6, 2),
    (8, 7),
    (15, 1),
];
pub(super) const M_TAIL: [(u32, u32); 7] =
    [(1, 10), (2, 7), (3, 6), (4, 4), (5, 1), (6, 2), (15, 1)];
/// Follower-count forms (digits, k, M) per row: repeated posters 57/762/136, one-off 336/839/31.
pub(super) const FORMS_HEAD: [u32; 3] = [57, 762, 136];
pub(super) const FORMS_TAIL: [u32; 3] = [336, 839, 31];
/// Share of (non-broken) posts by a repeated poster: 955 / 2161.
pub(super) const HEAD_SHARE: f64 = 955.0 / 2161.0;
/// Zipf exponent of the repeated posters' popularity.
pub(super) const HEAD_ZIPF: f64 = 0.8;

/// Categories and their rows in the sample; their topics are in `words/topics.txt`.
pub(super) const CATEGORIES: [(&str, u32); 13] = [
    ("art", 188),
    ("beauty", 145),
    ("christmas", 216),
    ("diy-and-crafts", 162),
    ("education", 164),
    ("event-planning", 158),
    ("finance", 173),
    ("home-decor", 150),
    ("mens-fashion", 169),
    ("quotes", 175),
    ("tattoos", 168),
    ("travel", 169),
    ("vehicles", 141),
];

/// Rates out of the 2,178 sample rows.
pub(super) const SAMPLE_ROWS: f64 = 2178.0;
pub(super) const P_MULTI_VIDEO: f64 = 155.0 / SAMPLE_ROWS;
/// Among multi-video posts.
pub(super) const P_BROKEN: f64 = 17.0 / 155.0;
/// Among non-broken multi-video posts.
pub(super) const P_MV_IMAGE_ERROR: f64 = 37.0 / 138.0;
pub(super) const P_MV_EMPTY_TITLE: f64 = 1.0 / 138.0;
pub(super) const P_MV_NO_TAGS: f64 = 1.0 / 138.0;
/// Among image/video posts.
pub(super) const P_VIDEO: f64 = 66.0 / 2023.0;
pub(super) const P_NO_DESCRIPTION: f64 = 32.0 / 2023.0;
pub(super) const P_NO_TAGS: f64 = 14.0 / 2023.0;
/// Image extensions among images with a source.
pub(super) const IMAGE_EXTS: [(&str, u32); 4] =
    [("jpg", 1624), ("png", 319), ("webp", 11), ("gif", 3)];
/// Tags per tag list (2,146 lists).
pub(super) const TAG_COUNTS: [(usize, u32); 4] = [(9, 2142), (8, 2), (7, 1), (3, 1)];
/// Title words: quantiles at 0, 5, ..., 100 %.
pub(super) const TITLE_WORDS_Q: [f64; 21] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0, 7.0, 7.0, 8.0, 9.0, 9.0, 10.0, 10.0, 11.0, 11.0, 12.0, 13.0,
    14.0, 16.0, 32.0,
];
/// Words of descriptions that are not cut: quantiles at 0, 5, ..., 100 %.
pub(super) const DESC_WORDS_Q: [f64; 21] = [
    1.0, 4.0, 7.0, 9.0, 11.0, 13.0, 15.0, 16.0, 19.0, 20.0, 21.0, 22.0, 23.0, 23.0, 24.0, 25.0,
    26.0, 27.0, 28.0, 30.0, 36.0,
];
/// Share of real descriptions cut at 178-179 characters with `…\u{a0}` (799 / 1991).
pub(super) const P_DESC_CUT: f64 = 799.0 / 1991.0;
/// Share of the cut ones that are 179 characters long (659 / 797), the others 178.
pub(super) const P_DESC_CUT_179: f64 = 659.0 / 797.0;
/// Age histogram, ages 20..=60.
pub(super) const AGE_HIST: [u32; 41] = [
    412, 239, 115, 123, 75, 81, 62, 53, 82, 41, 58, 40, 57, 40, 45, 33, 34, 42, 37, 27, 28, 25, 32,
    30, 28, 31, 21, 30, 23, 30, 28, 19, 17, 20, 13, 24, 13, 15, 19, 23, 13,
];
/// How often a correlated field reuses the other's position (lat/lon, age/date_joined).
pub(super) const P_SHARED_POSITION: f64 = 0.5;

/// First and last day of `geo.timestamp`, and of `user.date_joined` (UTC).
pub(super) const GEO_FROM: NaiveDate = date(2017, 10, 20);
pub(super) const GEO_TO: NaiveDate = date(2022, 10, 18);
pub(super) const JOINED_FROM: NaiveDate = date(2015, 10, 21);
pub(super) const JOINED_TO: NaiveDate = date(2017, 10, 18);

/// A calendar date checked when compiling: a wrong one fails the build, not a run.
const fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("not a calendar date"),
    }
}

/// The sample's null markers and its multi-video kind, written as the real posts carry them.
pub(super) const NO_DESCRIPTION_STORY: &str = "No description available Story format";
pub(super) const NO_DESCRIPTION: &str = "No description available";
pub(super) const NO_TITLE: &str = "No Title Data Available";
pub(super) const USER_INFO_ERROR: &str = "User Info Error";
pub(super) const NO_TAGS: &str = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e";
pub(super) const IMAGE_SRC_ERROR: &str = "Image src error.";
pub(super) const MULTI_VIDEO: &str = "multi-video(story page format)";

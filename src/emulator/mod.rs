//! The built-in posting emulator: a deterministic stand-in for the original Python script that
//! loops forever, picks a random post index (with replacement) and sends its pin, geo and user
//! records as JSON (`json.dumps` defaults: `", "` / `": "` separators, `ensure_ascii=True`,
//! field order as in the real tables).
//!
//! Everything is a pure function of the seed: [`Emulator::post_of`] maps a global event number
//! to a post index, and [`Emulator::post`] maps a post index to its three messages, so the same
//! post always carries the same bytes, whichever worker or partition re-sends it.
//!
//! The numbers that shape the posts, and the sample they were measured on, are in
//! [`calibration`]; the words they are made of are data files under `words/`.

mod calibration;
mod files;
mod json;
mod random;
mod words;

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use rand::Rng;
use rand_pcg::Pcg64Mcg;

use self::calibration::*;
pub use self::files::write_jsonl;
use self::json::{GeoRecord, PinRecord, UserRecord, push_decimal};
use self::random::{
    Cdf, D_GEO, D_PIN, D_POSTER, D_SEQ, D_USER, pick, quantile, rng_for, skewed_index, weighted,
};
use self::words::*;
use crate::stream::Stream;

/// Rounds to `digits` significant digits (the sample's coordinates have 6).
fn round_significant(v: f64, digits: i32) -> f64 {
    if v == 0.0 {
        return 0.0;
    }
    let decimals = digits - 1 - v.abs().log10().floor() as i32;
    if decimals >= 0 {
        let p = 10f64.powi(decimals);
        (v * p).round() / p
    } else {
        let p = 10f64.powi(-decimals);
        (v / p).round() * p
    }
}

/// The first and last second (UTC) of a span of whole days, in seconds since the epoch.
fn day_span(from: NaiveDate, to: NaiveDate) -> (i64, i64) {
    let first = from.and_time(NaiveTime::MIN).and_utc().timestamp();
    let last = to.and_time(NaiveTime::MIN).and_utc().timestamp() + 86_399;
    (first, last)
}

/// The UTC datetime of seconds since the epoch (all the generator's lie within chrono's range).
fn utc(seconds: i64) -> NaiveDateTime {
    DateTime::from_timestamp(seconds, 0)
        .expect("generated dates lie within chrono's range")
        .naive_utc()
}

/// One event: the three JSON messages of one post, exactly as the original emulator sends them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub index: u64,
    pub pin: Vec<u8>,
    pub geo: Vec<u8>,
    pub user: Vec<u8>,
}

impl Event {
    /// The message of one stream.
    pub fn message(&self, stream: Stream) -> &[u8] {
        match stream {
            Stream::Pin => &self.pin,
            Stream::Geo => &self.geo,
            Stream::User => &self.user,
        }
    }
}

/// What fills a slot of a template: `{A}` adjective, `{T}` (or `{T2}`) topic, `{S}` suffix, `{N}`
/// number, `{V}` verb, `{U}` audience, `{W}` season, `{P}` place.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Adjective,
    Topic,
    Suffix,
    Number,
    Verb,
    Audience,
    Season,
    Place,
}

/// A template split once into its text and its slots, so that filling one (a few dozen times
/// per post) scans nothing.
#[derive(Debug)]
struct Template {
    /// Each slot with the text before it, and whether it was written in lower case (`{a}`),
    /// which asks for its word in lower case.
    slots: Vec<(&'static str, Slot, bool)>,
    /// The text after the last slot.
    tail: &'static str,
    /// Spaces in the template's own text (a filled fragment's words are one more than its
    /// spaces).
    spaces: usize,
}

impl Template {
    fn parse(template: &'static str) -> Template {
        let mut slots = Vec::new();
        let mut rest = template;
        while let Some((before, after)) = rest.split_once('{') {
            let (slot, after) = after
                .split_once('}')
                .unwrap_or_else(|| panic!("unclosed slot in {template:?}"));
            let kind = match slot.as_bytes() {
                [b'A' | b'a'] => Slot::Adjective,
                [b'T' | b't'] | [b'T' | b't', b'2'] => Slot::Topic,
                [b'S' | b's'] => Slot::Suffix,
                [b'N' | b'n'] => Slot::Number,
                [b'V' | b'v'] => Slot::Verb,
                [b'U' | b'u'] => Slot::Audience,
                [b'W' | b'w'] => Slot::Season,
                [b'P' | b'p'] => Slot::Place,
                _ => panic!("unknown slot {slot:?} in {template:?}"),
            };
            slots.push((before, kind, slot.as_bytes()[0].is_ascii_lowercase()));
            rest = after;
        }
        let spaces = slots
            .iter()
            .map(|(before, ..)| spaces(before))
            .sum::<usize>()
            + spaces(rest);
        Template {
            slots,
            tail: rest,
            spaces,
        }
    }
}

/// What fills one slot of a [`Template`].
enum Piece<'a> {
    Word(&'a str),
    Number(u8),
}

/// Draws what fills a slot.
fn draw<'a>(rng: &mut Pcg64Mcg, slot: Slot, topics: &[&'a str]) -> Piece<'a> {
    let word: &&'a str = match slot {
        Slot::Adjective => pick(rng, &ADJECTIVES),
        Slot::Topic => pick(rng, topics),
        Slot::Suffix => pick(rng, &SUFFIXES),
        Slot::Number => return Piece::Number(rng.random_range(5..=50)),
        Slot::Verb => pick(rng, &VERBS),
        Slot::Audience => pick(rng, &AUDIENCES),
        Slot::Season => pick(rng, &SEASONS),
        Slot::Place => pick(rng, &PLACES),
    };
    Piece::Word(word)
}

/// The words of `template` filled by what `rng` draws next: the draws of
/// [`Emulator::fill_slots`], writing nothing.
fn words_drawn(rng: &mut Pcg64Mcg, template: &Template, topics: &[&str]) -> usize {
    let mut spaces_drawn = template.spaces;
    for &(_, slot, _) in &template.slots {
        if let Piece::Word(word) = draw(rng, slot, topics) {
            spaces_drawn += spaces(word);
        }
    }
    spaces_drawn + 1
}

/// The spaces in `text`.
fn spaces(text: &str) -> usize {
    text.bytes().filter(|&b| b == b' ').count()
}

/// [`TITLE_PARTS`], parsed.
static TITLE_TEMPLATES: LazyLock<Vec<Template>> =
    LazyLock::new(|| TITLE_PARTS.iter().copied().map(Template::parse).collect());
/// [`SENTENCES`], parsed.
static SENTENCE_TEMPLATES: LazyLock<Vec<Template>> =
    LazyLock::new(|| SENTENCES.iter().copied().map(Template::parse).collect());
/// The shapes of a tag, in the order of their weights in [`Emulator::tags`].
static TAG_TEMPLATES: LazyLock<[Template; 4]> =
    LazyLock::new(|| ["{A} {T}", "{T} {S}", "{T}", "{A} {T} {S}"].map(Template::parse));

/// A poster: the name and follower count every post of theirs carries.
struct Poster {
    name: String,
    follower_count: String,
}

/// What decides the generated bytes: the same parameters give the same posts, byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parameters {
    pub seed: u64,
    /// Number of distinct posts events are drawn from (with replacement, so posts repeat).
    pub universe: u64,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            seed: 0,
            universe: 11_000,
        }
    }
}

/// The deterministic post generator of one set of [`Parameters`].
#[derive(Clone, Debug)]
pub struct Emulator {
    seed: u64,
    universe: u64,
    /// Popularity of the repeated ("head") posters, by rank.
    heads: Cdf,
}

impl Emulator {
    /// Takes anything that names the parameters (the connector's settings convert), so callers
    /// keep their own settings type and the generator stays below the connector layer.
    pub fn new(parameters: impl Into<Parameters>) -> Self {
        let Parameters { seed, universe } = parameters.into();
        let universe = universe.max(1);
        let heads = (universe / 8).clamp(1, 200_000);
        Emulator {
            seed,
            universe,
            heads: Cdf::new((1..=heads).map(|rank| (rank as f64).powf(-HEAD_ZIPF))),
        }
    }

    /// The post index event `seq` (global, 0-based) sends: uniform over the universe, from a
    /// generator seeded with (seed, seq) alone.
    pub fn post_of(&self, seq: u64) -> u64 {
        rng_for(self.seed, D_SEQ, seq).random_range(0..self.universe)
    }

    /// The three messages of post `index`: a pure function of (seed, index).
    pub fn post(&self, index: u64) -> Event {
        Event {
            index,
            pin: self.pin(index),
            geo: self.geo(index),
            user: self.user(index),
        }
    }

    pub fn event(&self, seq: u64) -> Event {
        self.post(self.post_of(seq))
    }

    fn pin(&self, index: u64) -> Vec<u8> {
        let rng = &mut rng_for(self.seed, D_PIN, index);
        let category = weighted(rng, CATEGORIES.iter().map(|c| c.1));
        let topics = &TOPICS[category];

        let multi_video = rng.random_bool(P_MULTI_VIDEO);
        let broken = multi_video && rng.random_bool(P_BROKEN);
        let (kind, image_error, title_marker, description_marker, no_tags) = if broken {
            (
                MULTI_VIDEO,
                true,
                Some(NO_TITLE),
                Some(NO_DESCRIPTION_STORY),
                true,
            )
        } else if multi_video {
            let image_error = rng.random_bool(P_MV_IMAGE_ERROR);
            let empty_title = rng.random_bool(P_MV_EMPTY_TITLE);
            let no_tags = rng.random_bool(P_MV_NO_TAGS);
            let title = empty_title.then_some("");
            (
                MULTI_VIDEO,
                image_error,
                title,
                Some(NO_DESCRIPTION_STORY),
                no_tags,
            )
        } else {
            let kind = if rng.random_bool(P_VIDEO) {
                "video"
            } else {
                "image"
            };
            let description = rng.random_bool(P_NO_DESCRIPTION).then_some(NO_DESCRIPTION);
            (kind, false, None, description, rng.random_bool(P_NO_TAGS))
        };

        let mut uuid = [0u8; 16];
        rng.fill(&mut uuid);
        uuid[6] = (uuid[6] & 0x0f) | 0x40;
        uuid[8] = (uuid[8] & 0x3f) | 0x80;
        // 8-4-4-4-12 hex digits.
        let mut unique_id = [b'-'; 36];
        let mut at = 0;
        for (i, &byte) in uuid.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            unique_id[at..at + 2].copy_from_slice(&lower_hex(byte));
            at += 2;
        }
        let unique_id = std::str::from_utf8(&unique_id).expect("hex digits and dashes");

        let title = match title_marker {
            Some(t) => t.to_string(),
            None => self.title(rng, topics),
        };
        let description = match description_marker {
            Some(d) => d.to_string(),
            None => self.description(rng, topics),
        };
        let poster = if broken {
            Poster {
                name: USER_INFO_ERROR.into(),
                follower_count: USER_INFO_ERROR.into(),
            }
        } else {
            self.poster_of(rng, index)
        };
        let tag_list = if no_tags {
            NO_TAGS.to_string()
        } else {
            self.tags(rng, topics)
        };
        let image_src = if image_error {
            IMAGE_SRC_ERROR.to_string()
        } else {
            let mut hash = [0u8; 32];
            for word in hash.chunks_exact_mut(8) {
                for (digits, byte) in word
                    .chunks_exact_mut(2)
                    .zip(rng.random::<u32>().to_be_bytes())
                {
                    digits.copy_from_slice(&lower_hex(byte));
                }
            }
            let hash = std::str::from_utf8(&hash).expect("hex digits");
            // `<root>/<hash[0..2]>/<hash[2..4]>/<hash[4..6]>/<hash>.<ext>`
            let image = kind == "image";
            let mut src = String::with_capacity(128);
            src.push_str(if image {
                "https://i.pinimg.com/originals/"
            } else {
                "https://i.pinimg.com/videos/thumbnails/originals/"
            });
            for dir in [&hash[0..2], &hash[2..4], &hash[4..6]] {
                src.push_str(dir);
                src.push('/');
            }
            src.push_str(hash);
            if image {
                src.push('.');
                src.push_str(IMAGE_EXTS[weighted(rng, IMAGE_EXTS.iter().map(|e| e.1))].0);
            } else {
                src.push_str(".0000001.jpg");
            }
            src
        };
        let category = CATEGORIES[category].0;

        let record = PinRecord {
            index,
            unique_id,
            title: &title,
            description: &description,
            poster_name: &poster.name,
            follower_count: &poster.follower_count,
            tag_list: &tag_list,
            is_image_or_video: kind,
            image_src: &image_src,
            downloaded: u8::from(!image_error),
            save_location: &["Local save in /data/", category].concat(),
            category,
        };
        record.dumps()
    }

    /// The poster of a (non-broken) post: one of the repeated posters, or its own.
    fn poster_of(&self, rng: &mut Pcg64Mcg, index: u64) -> Poster {
        if rng.random_bool(HEAD_SHARE) {
            let u: f64 = rng.random();
            self.poster(self.heads.index(u) as u64, true)
        } else {
            self.poster(self.heads.len() as u64 + index, false)
        }
    }

    fn poster(&self, id: u64, head: bool) -> Poster {
        let rng = &mut rng_for(self.seed, D_POSTER, id);
        // Names are joined with `concat`, which allocates their exact length once (`format!`
        // guessed short and grew, once per post).
        let brand = |rng: &mut Pcg64Mcg| *pick(rng, &BRAND_WORDS);
        let first = |rng: &mut Pcg64Mcg| *pick(rng, &FIRST_NAMES);
        let last = |rng: &mut Pcg64Mcg| *pick(rng, &LAST_NAMES);
        let kind = |rng: &mut Pcg64Mcg| *pick(rng, &BRAND_KINDS);
        let name = match rng.random_range(0..100) {
            0..25 => [first(rng), " ", last(rng)].concat(),
            25..32 => [
                first(rng),
                " ",
                char::from(b'A' + rng.random_range(0..26u8)).encode_utf8(&mut [0; 4]),
                ". ",
                last(rng),
            ]
            .concat(),
            32..42 => [brand(rng), brand(rng)].concat(),
            42..50 => [brand(rng), brand(rng), brand(rng)].concat(),
            50..60 => [brand(rng), " ", brand(rng), " ", kind(rng)].concat(),
            60..68 => [brand(rng), brand(rng), brand(rng), ".com"].concat(),
            68..78 => ["The ", brand(rng), " ", brand(rng), " ", kind(rng)].concat(),
            78..88 => [
                first(rng),
                " | ",
                brand(rng),
                " ",
                brand(rng),
                " ",
                kind(rng),
            ]
            .concat(),
            88..95 => format!(
                "{}{}{}",
                first(rng).to_lowercase(),
                last(rng).to_lowercase(),
                rng.random_range(1..100)
            ),
            _ => [
                first(rng),
                " ",
                last(rng),
                " - ",
                brand(rng),
                " ",
                brand(rng),
                " Blog & ",
                brand(rng),
                " Tips",
            ]
            .concat(),
        };
        let forms = if head { FORMS_HEAD } else { FORMS_TAIL };
        let mut follower_count = String::with_capacity(8);
        match weighted(rng, forms.into_iter()) {
            0 => push_decimal(
                &mut follower_count,
                quantile(&DIGITS_Q, rng.random()) as u64,
            ),
            1 => {
                let table = if head { &K_HEAD_Q } else { &K_TAIL_Q };
                push_decimal(&mut follower_count, quantile(table, rng.random()) as u64);
                follower_count.push('k');
            }
            _ => {
                let m = if head {
                    M_HEAD[weighted(rng, M_HEAD.iter().map(|m| m.1))].0
                } else {
                    M_TAIL[weighted(rng, M_TAIL.iter().map(|m| m.1))].0
                };
                push_decimal(&mut follower_count, m.into());
                follower_count.push('M');
            }
        }
        Poster {
            name,
            follower_count,
        }
    }

    /// Fills `template`'s slots with drawn words, appending to `out` (one buffer per field: the
    /// filling runs a few dozen times per post and was the emulator's largest cost while each
    /// step had a string of its own).
    fn fill_slots(
        &self,
        rng: &mut Pcg64Mcg,
        template: &Template,
        topics: &[&str],
        out: &mut String,
    ) {
        for &(before, slot, lower) in &template.slots {
            out.push_str(before);
            let word = match draw(rng, slot, topics) {
                Piece::Word(word) => word,
                // Digits: the same in either case.
                Piece::Number(n) => {
                    if n >= 10 {
                        out.push(char::from(b'0' + n / 10));
                    }
                    out.push(char::from(b'0' + n % 10));
                    continue;
                }
            };
            if !lower {
                out.push_str(word);
            } else if word.is_ascii() {
                let at = out.len();
                out.push_str(word);
                out[at..].make_ascii_lowercase();
            } else {
                out.push_str(&word.to_lowercase());
            }
        }
        out.push_str(template.tail);
    }

    /// Whole fragments, drawn until about `words` words (cut only if the first is too long),
    /// joined by spaces; each fragment's first letter upper-cased when `capitalised`.
    fn fill_words(
        &self,
        rng: &mut Pcg64Mcg,
        words: usize,
        templates: &[Template],
        topics: &[&str],
        capitalised: bool,
    ) -> String {
        let mut text = String::with_capacity(256);
        let mut kept = false;
        let mut count = 0;
        let mut misses = 0;
        while count < words && misses < 6 {
            let template = pick(rng, templates);
            // Most fragments drawn here do not fit: their words are counted on a copy of the
            // generator, and only a fragment that fits is drawn again and written. One that
            // does not leaves the generator as its drawing did.
            let mut counting = rng.clone();
            let n = words_drawn(&mut counting, template, topics);
            if !kept || count + n <= words {
                if kept {
                    text.push(' ');
                }
                let at = text.len();
                self.fill_slots(rng, template, topics, &mut text);
                if capitalised {
                    capitalise(&mut text, at);
                }
                count += n;
                kept = true;
            } else {
                *rng = counting;
                misses += 1;
            }
        }
        if count > words {
            // The first `words` words: up to the `words`th space (there are more words).
            if let Some((cut, _)) = text.match_indices(' ').nth(words - 1) {
                text.truncate(cut);
            }
        }
        text
    }

    fn title(&self, rng: &mut Pcg64Mcg, topics: &[&str]) -> String {
        let words = quantile(&TITLE_WORDS_Q, rng.random()).round().max(1.0) as usize;
        self.fill_words(rng, words, &TITLE_TEMPLATES, topics, false)
    }

    fn description(&self, rng: &mut Pcg64Mcg, topics: &[&str]) -> String {
        if rng.random_bool(P_DESC_CUT) {
            // Cut like the real ones: 176-177 characters, then an ellipsis and a no-break space.
            let keep = if rng.random_bool(P_DESC_CUT_179) {
                177
            } else {
                176
            };
            let mut text = String::with_capacity(256);
            while text.len() < keep + 1 {
                if !text.is_empty() {
                    text.push(' ');
                }
                let template = pick(rng, &SENTENCE_TEMPLATES);
                let at = text.len();
                self.fill_slots(rng, template, topics, &mut text);
                capitalise(&mut text, at);
            }
            text.truncate(keep);
            text.push_str("\u{2026}\u{a0}");
            text
        } else {
            let words = quantile(&DESC_WORDS_Q, rng.random()).round().max(1.0) as usize;
            let mut text = self.fill_words(rng, words, &SENTENCE_TEMPLATES, topics, true);
            text.truncate(180);
            text
        }
    }

    fn tags(&self, rng: &mut Pcg64Mcg, topics: &[&str]) -> String {
        let n = TAG_COUNTS[weighted(rng, TAG_COUNTS.iter().map(|t| t.1))].0;
        let mut tags = String::with_capacity(128);
        for i in 0..n {
            let template = match rng.random_range(0..100) {
                0..40 => &TAG_TEMPLATES[0],
                40..65 => &TAG_TEMPLATES[1],
                65..85 => &TAG_TEMPLATES[2],
                _ => &TAG_TEMPLATES[3],
            };
            if i > 0 {
                tags.push(',');
            }
            self.fill_slots(rng, template, topics, &mut tags);
        }
        tags
    }

    fn geo(&self, index: u64) -> Vec<u8> {
        let rng = &mut rng_for(self.seed, D_GEO, index);
        let (from, to) = day_span(GEO_FROM, GEO_TO);
        let timestamp = rng.random_range(from..=to);
        let u_lat: f64 = rng.random();
        let own: f64 = rng.random();
        let u_lon = if rng.random_bool(P_SHARED_POSITION) {
            u_lat
        } else {
            own
        };
        let latitude = round_significant(-90.0 + 180.0 * quantile(&SKEW_Q, u_lat), 6);
        let longitude = round_significant(-180.0 + 360.0 * quantile(&SKEW_Q, u_lon), 6);
        let country = COUNTRIES[skewed_index(rng.random(), COUNTRIES.len())];

        let record = GeoRecord {
            ind: index,
            timestamp: utc(timestamp),
            latitude,
            longitude,
            country,
        };
        record.dumps()
    }

    fn user(&self, index: u64) -> Vec<u8> {
        let rng = &mut rng_for(self.seed, D_USER, index);
        let first = FIRST_NAMES[skewed_index(rng.random(), FIRST_NAMES.len())];
        let last = LAST_NAMES[skewed_index(rng.random(), LAST_NAMES.len())];
        // Age from its histogram at position u, date_joined at u or at its own position.
        let u_age: f64 = rng.random();
        let own: f64 = rng.random();
        let u_joined = if rng.random_bool(P_SHARED_POSITION) {
            u_age
        } else {
            own
        };
        let total: u32 = AGE_HIST.iter().sum();
        let mut target = (u_age * f64::from(total)) as u32;
        let mut age: u8 = 60;
        for (i, &count) in AGE_HIST.iter().enumerate() {
            if target < count {
                age = 20 + i as u8;
                break;
            }
            target -= count;
        }
        let (from, to) = day_span(JOINED_FROM, JOINED_TO);
        let joined = from + (quantile(&SKEW_Q, u_joined) * (to - from) as f64) as i64;

        let record = UserRecord {
            ind: index,
            first_name: first,
            last_name: last,
            age,
            date_joined: utc(joined.min(to)),
        };
        record.dumps()
    }
}

/// `byte` as two lower-case hex digits (into arrays on the stack: a push per digit cost more
/// than the digits).
fn lower_hex(byte: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [
        DIGITS[usize::from(byte >> 4)],
        DIGITS[usize::from(byte & 0x0f)],
    ]
}

/// Upper-cases the ASCII letter that starts `text[at..]`, if one does (a fragment of a
/// description starts its sentence).
fn capitalise(text: &mut str, at: usize) {
    if let Some(first) = text.get_mut(at..at + 1) {
        first.make_ascii_uppercase();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Instant;

    const PIN_FIELDS: [&str; 12] = [
        "index",
        "unique_id",
        "title",
        "description",
        "poster_name",
        "follower_count",
        "tag_list",
        "is_image_or_video",
        "image_src",
        "downloaded",
        "save_location",
        "category",
    ];
    const GEO_FIELDS: [&str; 5] = ["ind", "timestamp", "latitude", "longitude", "country"];
    const USER_FIELDS: [&str; 5] = ["ind", "first_name", "last_name", "age", "date_joined"];

    /// Every template parses (a bad one would stop the first post that draws it).
    #[test]
    fn every_template_parses() {
        assert_eq!(TITLE_TEMPLATES.len(), TITLE_PARTS.len());
        assert_eq!(SENTENCE_TEMPLATES.len(), SENTENCES.len());
        assert!(TAG_TEMPLATES.iter().all(|t| !t.slots.is_empty()));
    }

    fn emulator(seed: u64) -> Emulator {
        Emulator::new(Parameters {
            seed,
            ..Parameters::default()
        })
    }

    fn parse(bytes: &[u8]) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::from_slice(bytes) {
            Ok(serde_json::Value::Object(map)) => map,
            other => panic!(
                "not a JSON object: {other:?}: {}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    /// The keys of a flat object in the order they appear in the bytes.
    fn key_order(bytes: &[u8], fields: &[&str]) -> bool {
        let text = std::str::from_utf8(bytes).unwrap();
        let mut at = 0;
        for (i, field) in fields.iter().enumerate() {
            let key = format!("{}\"{field}\": ", if i == 0 { "{" } else { ", " });
            match text[at..].find(&key) {
                Some(found) => at += found + key.len(),
                None => return false,
            }
        }
        true
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = emulator(7);
        let b = emulator(7);
        let c = emulator(8);
        let ea: Vec<Event> = (0..200).map(|s| a.event(s)).collect();
        let eb: Vec<Event> = (0..200).map(|s| b.event(s)).collect();
        let ec: Vec<Event> = (0..200).map(|s| c.event(s)).collect();
        assert_eq!(ea, eb);
        assert_ne!(ea, ec);
        // Different seeds differ post by post, not only in which posts are picked.
        assert_ne!(a.post(3).pin, c.post(3).pin);
        assert_ne!(a.post(3).geo, c.post(3).geo);
        assert_ne!(a.post(3).user, c.post(3).user);
        // Sampling with replacement from the universe.
        let small = Emulator::new(Parameters {
            seed: 1,
            universe: 50,
        });
        let picked: std::collections::BTreeSet<u64> = (0..500).map(|s| small.post_of(s)).collect();
        assert!(
            picked.len() > 40 && picked.iter().all(|&i| i < 50),
            "{picked:?}"
        );
    }

    /// The bytes of the first events, pinned: a job resumed by a newer pinstream re-sends the
    /// posts after its stored positions, so those posts must be the ones an older one sent (a
    /// faster generator must write the same bytes). FNV-1a over every message, in order.
    #[test]
    fn the_generated_bytes_are_those_of_earlier_versions() {
        let fingerprint = |emulator: &Emulator, events: u64| {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            let mut bytes = 0;
            for seq in 0..events {
                let event = emulator.event(seq);
                for stream in Stream::ALL {
                    for &byte in event.message(stream).iter().chain(b"\n") {
                        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
                    }
                    bytes += event.message(stream).len();
                }
            }
            (hash, bytes)
        };
        assert_eq!(
            fingerprint(&emulator(0), 5_000),
            (12_793_362_178_348_664_080, 4_962_694)
        );
        let distinct_heavy = Emulator::new(Parameters {
            seed: 2,
            universe: 1_000_000,
        });
        assert_eq!(
            fingerprint(&distinct_heavy, 5_000),
            (6_405_388_433_684_420_097, 4_994_746)
        );
    }

    #[test]
    fn post_is_stable_whatever_the_call_order() {
        let e = emulator(3);
        let forward: Vec<Event> = (0..100).map(|i| e.post(i)).collect();
        let mut backward: Vec<Event> = (0..100).rev().map(|i| e.post(i)).collect();
        backward.reverse();
        assert_eq!(forward, backward);
        for seq in [0, 1, 99, 12_345] {
            assert_eq!(e.event(seq), e.post(e.post_of(seq)));
        }
        // A re-sent post carries the same bytes, and its three records share the index.
        let first = e.post(42);
        let _ = e.post(43);
        assert_eq!(first, e.post(42));
        assert_eq!(parse(&first.pin)["index"], 42);
        assert_eq!(parse(&first.geo)["ind"], 42);
        assert_eq!(parse(&first.user)["ind"], 42);
    }

    #[test]
    fn messages_have_the_sample_fields_in_order_and_types() {
        let e = emulator(11);
        let (geo_from, geo_to) = ("2017-10-20 00:00:00", "2022-10-18 23:59:59");
        let (join_from, join_to) = ("2015-10-21 00:00:00", "2017-10-18 23:59:59");
        for i in 0..3000 {
            let ev = e.post(i);
            for (bytes, fields) in [
                (&ev.pin, &PIN_FIELDS[..]),
                (&ev.geo, &GEO_FIELDS[..]),
                (&ev.user, &USER_FIELDS[..]),
            ] {
                let map = parse(bytes);
                assert_eq!(
                    map.len(),
                    fields.len(),
                    "{}",
                    String::from_utf8_lossy(bytes)
                );
                assert!(
                    key_order(bytes, fields),
                    "{}",
                    String::from_utf8_lossy(bytes)
                );
                assert!(bytes.is_ascii(), "json.dumps escapes non-ASCII");
                assert!(!bytes.contains(&b'\n'));
            }
            let pin = parse(&ev.pin);
            assert!(pin["index"].is_u64() && pin["downloaded"].is_u64());
            for f in &PIN_FIELDS[1..] {
                if *f != "downloaded" {
                    assert!(pin[*f].is_string(), "{f}");
                }
            }
            let uuid = pin["unique_id"].as_str().unwrap();
            assert_eq!(uuid.len(), 36);
            assert_eq!(&uuid[14..15], "4");
            let category = pin["category"].as_str().unwrap();
            assert_eq!(
                pin["save_location"].as_str().unwrap(),
                format!("Local save in /data/{category}")
            );
            let src = pin["image_src"].as_str().unwrap();
            assert!(
                src == IMAGE_SRC_ERROR || src.starts_with("https://i.pinimg.com/"),
                "{src}"
            );
            assert!(pin["description"].as_str().unwrap().chars().count() <= 180);

            let geo = parse(&ev.geo);
            let (lat, lon) = (
                geo["latitude"].as_f64().unwrap(),
                geo["longitude"].as_f64().unwrap(),
            );
            assert!((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon));
            for (name, v) in [("latitude", lat), ("longitude", lon)] {
                let mut text = String::new();
                json::write_float(&mut text, v);
                let digits = text.trim_start_matches(['-', '0', '.']).replace('.', "");
                assert!(digits.len() <= 6 || text.contains('e'), "{name} {text}");
            }
            let ts = geo["timestamp"].as_str().unwrap();
            assert!(ts.len() == 19 && (geo_from..=geo_to).contains(&ts), "{ts}");
            assert!(COUNTRIES.contains(&geo["country"].as_str().unwrap()));

            let user = parse(&ev.user);
            let age = user["age"].as_i64().unwrap();
            assert!((20..=60).contains(&age), "{age}");
            let joined = user["date_joined"].as_str().unwrap();
            assert!(
                joined.len() == 19 && (join_from..=join_to).contains(&joined),
                "{joined}"
            );
            assert!(user["first_name"].is_string() && user["last_name"].is_string());
        }
    }

    #[test]
    fn coordinates_dates_and_layout() {
        assert_eq!(round_significant(-88.829_812_3, 6), -88.8298);
        assert_eq!(round_significant(0.001_234_567_8, 6), 0.001_234_57);
        assert_eq!(round_significant(123_456_789.0, 6), 123_457_000.0);
        let (first, last) = day_span(GEO_FROM, GEO_TO);
        assert_eq!(utc(first).to_string(), "2017-10-20 00:00:00");
        assert_eq!(utc(last).to_string(), "2022-10-18 23:59:59");
        assert_eq!(utc(0).to_string(), "1970-01-01 00:00:00");
        let pin = Emulator::new(Parameters::default()).post(4).pin;
        assert!(pin.starts_with(b"{\"index\": 4, \"unique_id\": \""));
    }

    /// Rates over many generated posts against the sample's (module comment).
    #[test]
    fn rates_match_the_sample() {
        let n = 20_000u64;
        let started = Instant::now();
        let mut counts: HashMap<String, f64> = HashMap::new();
        let mut categories: HashMap<String, f64> = HashMap::new();
        let mut lats = Vec::new();
        let mut ages = Vec::new();
        let mut posters: HashMap<String, std::collections::BTreeSet<String>> = HashMap::new();
        for seed in [1u64, 2] {
            let e = emulator(seed);
            for i in 0..n / 2 {
                let ev = e.post(i);
                let pin = parse(&ev.pin);
                let s = |f: &str| pin[f].as_str().unwrap().to_string();
                let mut count = |key: String| *counts.entry(key).or_default() += 1.0;
                let fc = s("follower_count");
                count(format!(
                    "fc:{}",
                    if fc == USER_INFO_ERROR {
                        "error"
                    } else if fc.ends_with('k') {
                        "k"
                    } else if fc.ends_with('M') {
                        "M"
                    } else {
                        assert!(fc.chars().all(|c| c.is_ascii_digit()), "{fc}");
                        "digits"
                    }
                ));
                count(format!("kind:{}", s("is_image_or_video")));
                count(format!("description:{}", s("description")));
                count(format!("title:{}", s("title")));
                count(format!("poster:{}", s("poster_name")));
                count(format!("tags:{}", s("tag_list")));
                count(format!("src:{}", s("image_src")));
                count(format!(
                    "cut:{}",
                    s("description").ends_with("\u{2026}\u{a0}")
                ));
                *categories.entry(s("category")).or_default() += 1.0;
                // Co-occurrences of the sample.
                assert_eq!(s("poster_name") == USER_INFO_ERROR, fc == USER_INFO_ERROR);
                assert_eq!(pin["downloaded"] == 0, s("image_src") == IMAGE_SRC_ERROR);
                assert_eq!(
                    s("is_image_or_video") == MULTI_VIDEO,
                    s("description") == NO_DESCRIPTION_STORY
                );
                if s("title") == NO_TITLE {
                    assert_eq!(s("tag_list"), NO_TAGS);
                }
                if seed == 1 {
                    posters.entry(s("poster_name")).or_default().insert(fc);
                }
                lats.push(parse(&ev.geo)["latitude"].as_f64().unwrap());
                ages.push(parse(&ev.user)["age"].as_i64().unwrap());
            }
        }
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "generated and parsed {n} posts in {secs:.2} s ({:.0} posts/s, this build's profile)",
            n as f64 / secs
        );
        let n = n as f64;
        let check = |key: &str, sample: f64, extra: f64| {
            let got = counts.get(key).copied().unwrap_or(0.0) / n;
            let want = sample / SAMPLE_ROWS;
            let tolerance = 4.0 * (want * (1.0 - want) / n).sqrt() + extra;
            assert!(
                (got - want).abs() <= tolerance,
                "{key}: {got:.4} vs sample {want:.4} (+-{tolerance:.4})"
            );
        };
        // Follower counts belong to posters, so popular posters make them lumpier.
        check("fc:digits", 393.0, 0.03);
        check("fc:k", 1601.0, 0.03);
        check("fc:M", 167.0, 0.03);
        check("fc:error", 17.0, 0.0);
        check("kind:image", 1957.0, 0.0);
        check("kind:video", 66.0, 0.0);
        check(&format!("kind:{MULTI_VIDEO}"), 155.0, 0.0);
        check(&format!("description:{NO_DESCRIPTION_STORY}"), 155.0, 0.0);
        check(&format!("description:{NO_DESCRIPTION}"), 32.0, 0.0);
        check(&format!("title:{NO_TITLE}"), 17.0, 0.0);
        check("title:", 1.0, 0.0);
        check(&format!("poster:{USER_INFO_ERROR}"), 17.0, 0.0);
        check(&format!("tags:{NO_TAGS}"), 32.0, 0.0);
        check(&format!("src:{IMAGE_SRC_ERROR}"), 54.0, 0.0);
        check("cut:true", 799.0, 0.0);
        for (category, sample) in CATEGORIES {
            let got = categories.get(category).copied().unwrap_or(0.0) / n;
            let want = f64::from(sample) / SAMPLE_ROWS;
            assert!(
                (got - want).abs() < 0.012,
                "{category}: {got:.4} vs {want:.4}"
            );
        }
        // A poster keeps its follower count; some posters post a lot.
        let varying = posters.values().filter(|c| c.len() > 1).count();
        eprintln!(
            "{varying} of {} poster names with several follower counts",
            posters.len()
        );
        assert!(varying < posters.len() / 50);
        let busiest = posters.len();
        assert!(
            busiest < 9_000,
            "{busiest} distinct posters for 10,000 posts"
        );
        // Skewed shapes: medians near the sample's (latitude -62.9, age 28).
        lats.sort_by(f64::total_cmp);
        ages.sort();
        let median_lat = lats[lats.len() / 2];
        assert!((-72.0..-52.0).contains(&median_lat), "{median_lat}");
        assert!(
            (25..=31).contains(&ages[ages.len() / 2]),
            "{}",
            ages[ages.len() / 2]
        );
    }
}

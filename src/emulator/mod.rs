//! The built-in posting emulator: a deterministic stand-in for the original Python script that
//! loops forever, picks a random post index (with replacement) and sends its pin, geo and user
//! records as JSON (`json.dumps` defaults: `", "` / `": "` separators, `ensure_ascii=True`,
//! field order as in the real tables).
//!
//! Everything is a pure function of the seed: [`Emulator::post_of`] maps a global event number
//! to a post index, and [`Emulator::post`] maps a post index to its three messages, so the same
//! post always carries the same bytes, whichever worker or partition re-sends it.
//!
//! # Calibration
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

use std::io::{self, BufWriter, Write};
use std::path::Path;

use rand::Rng;
use rand_pcg::Pcg64Mcg;

use crate::stream::Stream;

// ---------------------------------------------------------------------------------------------
// Calibration tables (see the module comment)
// ---------------------------------------------------------------------------------------------

/// Shape of the skewed fields, as quantiles at 0, 5, ..., 100 % of a position in [0, 1]
/// (mean of the normalised latitude, longitude and date_joined quantiles of the sample).
const SKEW_Q: [f64; 21] = [
    0.0, 0.0031, 0.0070, 0.0151, 0.0261, 0.0369, 0.0512, 0.0723, 0.0970, 0.1240, 0.1559, 0.1938,
    0.2336, 0.2899, 0.3458, 0.4284, 0.5185, 0.6192, 0.7392, 0.8605, 1.0,
];
/// `follower_count` given as plain digits: quantiles at 0, 5, ..., 100 %.
const DIGITS_Q: [f64; 21] = [
    0.0, 2.0, 5.0, 8.0, 20.0, 27.0, 34.0, 50.0, 82.0, 121.0, 157.0, 184.0, 214.0, 259.0, 322.0,
    392.0, 458.0, 579.0, 765.0, 873.0, 999.0,
];
/// `Nk` values of repeated posters (per poster).
const K_HEAD_Q: [f64; 21] = [
    1.0, 4.0, 7.0, 11.0, 17.0, 21.0, 27.0, 34.0, 42.0, 52.0, 64.0, 79.0, 98.0, 119.0, 150.0, 214.0,
    277.0, 388.0, 502.0, 723.0, 999.0,
];
/// `Nk` values of one-off posters.
const K_TAIL_Q: [f64; 21] = [
    1.0, 2.0, 2.0, 4.0, 5.0, 6.0, 7.0, 10.0, 13.0, 17.0, 21.0, 27.0, 32.0, 41.0, 55.0, 75.0, 102.0,
    139.0, 227.0, 398.0, 999.0,
];
/// `NM` values (value, weight): rows of repeated posters, and one-off posters.
const M_HEAD: [(u32, u32); 8] = [
    (1, 29),
    (2, 73),
    (3, 9),
    (4, 11),
    (5, 35),
    (6, 2),
    (8, 7),
    (15, 1),
];
const M_TAIL: [(u32, u32); 7] = [(1, 10), (2, 7), (3, 6), (4, 4), (5, 1), (6, 2), (15, 1)];
/// Follower-count forms (digits, k, M) per row: repeated posters 57/762/136, one-off 336/839/31.
const FORMS_HEAD: [u32; 3] = [57, 762, 136];
const FORMS_TAIL: [u32; 3] = [336, 839, 31];
/// Share of (non-broken) posts by a repeated poster: 955 / 2161.
const HEAD_SHARE: f64 = 955.0 / 2161.0;
/// Zipf exponent of the repeated posters' popularity.
const HEAD_ZIPF: f64 = 0.8;

const CATEGORIES: [(&str, u32); 13] = [
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
const SAMPLE_ROWS: f64 = 2178.0;
const P_MULTI_VIDEO: f64 = 155.0 / SAMPLE_ROWS;
/// Among multi-video posts.
const P_BROKEN: f64 = 17.0 / 155.0;
/// Among non-broken multi-video posts.
const P_MV_IMAGE_ERROR: f64 = 37.0 / 138.0;
const P_MV_EMPTY_TITLE: f64 = 1.0 / 138.0;
const P_MV_NO_TAGS: f64 = 1.0 / 138.0;
/// Among image/video posts.
const P_VIDEO: f64 = 66.0 / 2023.0;
const P_NO_DESCRIPTION: f64 = 32.0 / 2023.0;
const P_NO_TAGS: f64 = 14.0 / 2023.0;
/// Image extensions among images with a source.
const IMAGE_EXTS: [(&str, u32); 4] = [("jpg", 1624), ("png", 319), ("webp", 11), ("gif", 3)];
/// Tags per tag list (2,146 lists).
const TAG_COUNTS: [(usize, u32); 4] = [(9, 2142), (8, 2), (7, 1), (3, 1)];
/// Title words: quantiles at 0, 5, ..., 100 %.
const TITLE_WORDS_Q: [f64; 21] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0, 7.0, 7.0, 8.0, 9.0, 9.0, 10.0, 10.0, 11.0, 11.0, 12.0, 13.0,
    14.0, 16.0, 32.0,
];
/// Words of descriptions that are not cut: quantiles at 0, 5, ..., 100 %.
const DESC_WORDS_Q: [f64; 21] = [
    1.0, 4.0, 7.0, 9.0, 11.0, 13.0, 15.0, 16.0, 19.0, 20.0, 21.0, 22.0, 23.0, 23.0, 24.0, 25.0,
    26.0, 27.0, 28.0, 30.0, 36.0,
];
/// Share of real descriptions cut at 178-179 characters with `…\u{a0}` (799 / 1991).
const P_DESC_CUT: f64 = 799.0 / 1991.0;
/// Share of the cut ones that are 179 characters long (659 / 797), the others 178.
const P_DESC_CUT_179: f64 = 659.0 / 797.0;
/// Age histogram, ages 20..=60.
const AGE_HIST: [u32; 41] = [
    412, 239, 115, 123, 75, 81, 62, 53, 82, 41, 58, 40, 57, 40, 45, 33, 34, 42, 37, 27, 28, 25, 32,
    30, 28, 31, 21, 30, 23, 30, 28, 19, 17, 20, 13, 24, 13, 15, 19, 23, 13,
];
/// How often a correlated field reuses the other's position (lat/lon, age/date_joined).
const P_SHARED_POSITION: f64 = 0.5;

const GEO_FROM: (i32, u32, u32) = (2017, 10, 20);
const GEO_TO: (i32, u32, u32) = (2022, 10, 18);
const JOINED_FROM: (i32, u32, u32) = (2015, 10, 21);
const JOINED_TO: (i32, u32, u32) = (2017, 10, 18);

const NO_DESCRIPTION_STORY: &str = "No description available Story format";
const NO_DESCRIPTION: &str = "No description available";
const NO_TITLE: &str = "No Title Data Available";
const USER_INFO_ERROR: &str = "User Info Error";
const NO_TAGS: &str = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e";
const IMAGE_SRC_ERROR: &str = "Image src error.";
const MULTI_VIDEO: &str = "multi-video(story page format)";

// ---------------------------------------------------------------------------------------------
// Word lists (written for the emulator; nothing taken from the sample)
// ---------------------------------------------------------------------------------------------

/// Topics per category, in the order of [`CATEGORIES`].
const TOPICS: [&str; 13] = [
    "Watercolor Painting,Acrylic Painting,Abstract Art,Pencil Drawing,Sketchbook,Oil Painting,Canvas Art,Wall Art,Art Journal,Portrait Drawing,Landscape Painting,Charcoal Sketch,Mixed Media,Art Prints,Pastel Art,Ink Illustration,Digital Art,Color Theory,Still Life,Art Studio",
    "Makeup Looks,Skin Care,Nail Art,Eyeshadow Palette,Hair Color,Braided Hairstyles,Lipstick Shades,Skincare Routine,Face Masks,Eyebrow Tutorial,Natural Makeup,Curly Hair,Nail Designs,Beauty Hacks,Hair Care,Glowing Skin,Bridal Makeup,Short Haircuts,Perfume,Lash Extensions",
    "Christmas Tree,Christmas Decorations,Holiday Wreath,Christmas Cookies,Gingerbread House,Advent Calendar,Christmas Crafts,Stocking Stuffers,Holiday Table,Christmas Lights,Ornaments,Christmas Gifts,Santa Claus,Winter Village,Christmas Mantel,Holiday Baking,Elf Ideas,Christmas Cards,Nativity Scene,Festive Garland",
    "Paper Crafts,Kids Crafts,Mason Jars,Crochet Patterns,Sewing Projects,Upcycled Furniture,Scrapbooking,Embroidery,Origami,Macrame,Wood Projects,Painted Rocks,Felt Crafts,Candle Making,Knitting Patterns,Resin Art,Cricut Projects,Yarn Crafts,Button Art,Clay Crafts",
    "Classroom Management,Teaching Resources,Lesson Plans,Reading Comprehension,Math Activities,Science Experiments,Homeschool,Study Tips,Phonics,Learning Games,Bulletin Boards,Writing Prompts,Sight Words,Educational Psychology,Kindergarten Activities,Online Learning,Study Notes,Grammar Lessons,Early Childhood,Teacher Tips",
    "Wedding Decor,Birthday Party,Baby Shower,Party Decorations,Wedding Invitations,Table Settings,Bridal Shower,Balloon Garland,Party Favors,Centerpieces,Event Planning,Dessert Table,Wedding Cake,Graduation Party,Party Themes,Photo Booth,Outdoor Wedding,Floral Arrangements,Gender Reveal,Dinner Party",
    "Budget Planner,Saving Money,Debt Payoff,Personal Finance,Investing Tips,Side Hustle,Money Management,Passive Income,Retirement Planning,Frugal Living,Credit Score,Savings Challenge,Financial Freedom,Stock Market,Budgeting Tips,Emergency Fund,Make Money Online,Financial Planning,Cash Envelopes,Money Mindset",
    "Living Room,Bedroom Decor,Kitchen Design,Farmhouse Decor,Bathroom Ideas,Home Office,Wall Decor,Interior Design,Boho Decor,Cozy Bedroom,Small Spaces,Rustic Decor,Entryway,Gallery Wall,Modern Kitchen,Throw Pillows,Shelf Styling,Dining Room,Scandinavian Interior,Apartment Decor",
    "Mens Outfits,Street Style,Casual Wear,Mens Suits,Leather Jacket,Sneakers,Denim Jacket,Mens Accessories,Smart Casual,Business Attire,Summer Outfits,Mens Boots,Watches,Winter Coats,Chinos,Mens Style,Classic Menswear,Streetwear,Layering,Minimalist Wardrobe",
    "Inspirational Quotes,Motivational Quotes,Life Quotes,Love Quotes,Positive Affirmations,Funny Quotes,Friendship Quotes,Self Love,Wisdom Quotes,Daily Motivation,Success Quotes,Happiness Quotes,Mindset Quotes,Encouragement,Strength Quotes,Mental Health,Gratitude,Short Quotes,Quote Art,Words Of Wisdom",
    "Small Tattoos,Tattoo Designs,Flower Tattoos,Minimalist Tattoos,Sleeve Tattoo,Fine Line Tattoos,Wrist Tattoos,Script Tattoo,Geometric Tattoos,Rose Tattoo,Back Tattoos,Tattoo Ideas,Matching Tattoos,Blackwork,Watercolor Tattoos,Arm Tattoos,Dragon Tattoo,Moon Tattoo,Butterfly Tattoo,Ankle Tattoos",
    "Travel Destinations,Road Trip,Beach Vacation,Travel Tips,Packing List,Europe Travel,Hiking Trails,National Parks,Travel Photography,Island Getaway,City Break,Backpacking,Travel Bucket List,Mountain Views,Hidden Gems,Travel Itinerary,Camping,Weekend Getaway,Solo Travel,Budget Travel",
    "Classic Cars,Sports Cars,Muscle Cars,Motorcycles,Luxury Cars,Vintage Trucks,Off Road,Car Interior,Supercars,Custom Bikes,Electric Cars,Car Detailing,Jeep Life,Race Cars,Camper Van,Hot Rods,Dream Cars,Car Wheels,Drift Cars,Pickup Trucks",
];
const ADJECTIVES: &[&str] = &[
    "Easy",
    "Simple",
    "Cute",
    "Beautiful",
    "Modern",
    "Creative",
    "Amazing",
    "Cozy",
    "Elegant",
    "Minimalist",
    "Vintage",
    "Colorful",
    "Unique",
    "Stunning",
    "Fun",
    "Best",
    "Awesome",
    "Rustic",
    "Classic",
    "Trendy",
    "Gorgeous",
    "Cheap",
    "Quick",
    "Aesthetic",
    "Bold",
    "Chic",
    "Dreamy",
    "Stylish",
    "Natural",
    "Perfect",
];
const SUFFIXES: &[&str] = &[
    "Ideas",
    "Inspiration",
    "Tips",
    "Tutorial",
    "For Beginners",
    "Projects",
    "Hacks",
    "Guide",
    "Goals",
    "Designs",
];
const AUDIENCES: &[&str] = &[
    "Beginners",
    "Kids",
    "Teens",
    "Women",
    "Men",
    "Families",
    "Students",
    "Teachers",
    "Couples",
    "Everyone",
];
const SEASONS: &[&str] = &[
    "Spring",
    "Summer",
    "Fall",
    "Winter",
    "The Holidays",
    "The Weekend",
];
const PLACES: &[&str] = &[
    "home",
    "classroom",
    "bedroom",
    "next trip",
    "weekend",
    "family",
    "friends",
    "garden",
    "office",
    "wardrobe",
];
const VERBS: &[&str] = &[
    "Make", "Create", "Style", "Paint", "Plan", "Build", "Organize", "Decorate", "Draw", "Learn",
];
const BRAND_WORDS: &[&str] = &[
    "Crafty",
    "Nest",
    "Cozy",
    "Cottage",
    "Studio",
    "Design",
    "Daily",
    "Style",
    "Home",
    "Life",
    "Journal",
    "Creative",
    "Mama",
    "Blog",
    "Diaries",
    "Corner",
    "Club",
    "Lab",
    "House",
    "Girl",
    "Guy",
    "Money",
    "Travel",
    "Wanderlust",
    "Ink",
    "Art",
    "Beauty",
    "Finance",
    "Party",
    "Teacher",
    "Garage",
    "Motors",
    "Quotes",
    "Words",
    "Decor",
    "Haven",
    "Kitchen",
    "Sparkle",
    "Simple",
    "Modern",
    "Vintage",
    "Wild",
    "Happy",
    "Little",
    "Urban",
    "Rustic",
    "Golden",
    "Bright",
    "Lovely",
    "Savvy",
    "Atelier",
    "Bloom",
    "Canvas",
    "Chalk",
    "Cloud",
    "Coast",
    "Cupcake",
    "Dash",
    "Dream",
    "Ember",
    "Fern",
    "Field",
    "Fox",
    "Frame",
    "Garden",
    "Glow",
    "Harbor",
    "Hive",
    "Honey",
    "Indigo",
    "Ivy",
    "Juniper",
    "Kind",
    "Lemon",
    "Linen",
    "Maple",
    "Meadow",
    "Mint",
    "Moon",
    "North",
    "Oak",
    "Olive",
    "Paper",
    "Pearl",
    "Pine",
    "Pixel",
    "Plum",
    "River",
    "Sage",
    "Salt",
    "Stone",
    "Sunny",
    "Thread",
    "Velvet",
    "Willow",
    "Wonder",
    "Yarn",
    "Zen",
];
/// Kinds of brand accounts.
const BRAND_KINDS: &[&str] = &[
    "Studio",
    "Co.",
    "Blog",
    "Shop",
    "Designs",
    "Magazine",
    "Collective",
    "Boutique",
    "Media",
    "Club",
    "Academy",
    "Lab",
    "Official",
    "Market",
    "Press",
];
/// Title fragments: `{A}` adjective, `{T}` topic, `{S}` suffix, `{N}` number, `{V}` verb,
/// `{U}` audience, `{W}` season.
const TITLE_PARTS: &[&str] = &[
    "{A} {T} {S}",
    "{N} {A} {T} {S}",
    "How To {V} {A} {T}",
    "{T} {S} For {U}",
    "The Best {T} For {W}",
    "{A} {T}",
    "{T}",
    "{N} {T} {S} You Will Love",
    "{A} And {A} {T}",
];
/// Description sentences: lower-case slots `{a}` `{t}` `{t2}` `{v}` `{u}` `{w}` `{p}` `{n}`.
const SENTENCES: &[&str] = &[
    "{a} {t} ideas for your {p}.",
    "Learn how to {v} {t} with this {a} step by step guide.",
    "These {n} {a} {t} ideas are perfect for {u}.",
    "Save this pin for later and get inspired by {a} {t}.",
    "Discover the best {t} for {w}.",
    "Check out our {a} {t} collection.",
    "A {a} way to {v} {t} on a budget.",
    "Everything you need to know about {t}.",
    "Try this {a} {t} tutorial today.",
    "Our favorite {t} and {t2} of the year.",
    "{a} {t} that anyone can {v}.",
    "Get the look with these {a} {t} tips.",
];

/// First names, alphabetical (the sample's are skewed to the start of the alphabet).
const FIRST_NAMES: &[&str] = &[
    "Aaron",
    "Abigail",
    "Adam",
    "Adrian",
    "Alan",
    "Albert",
    "Alex",
    "Alexander",
    "Alexis",
    "Alicia",
    "Allison",
    "Amanda",
    "Amber",
    "Amy",
    "Andrea",
    "Andrew",
    "Angela",
    "Anna",
    "Anthony",
    "April",
    "Ashley",
    "Austin",
    "Barbara",
    "Benjamin",
    "Beth",
    "Betty",
    "Bill",
    "Blake",
    "Bobby",
    "Bradley",
    "Brandon",
    "Brenda",
    "Brian",
    "Brittany",
    "Brooke",
    "Bruce",
    "Caitlin",
    "Calvin",
    "Cameron",
    "Carl",
    "Carlos",
    "Carol",
    "Caroline",
    "Catherine",
    "Chad",
    "Charles",
    "Chelsea",
    "Cheryl",
    "Christina",
    "Christopher",
    "Cindy",
    "Claire",
    "Cody",
    "Colleen",
    "Connor",
    "Courtney",
    "Craig",
    "Crystal",
    "Cynthia",
    "Dakota",
    "Dale",
    "Dana",
    "Daniel",
    "Danielle",
    "David",
    "Dawn",
    "Deborah",
    "Dennis",
    "Derek",
    "Diana",
    "Donald",
    "Donna",
    "Douglas",
    "Dustin",
    "Dylan",
    "Edward",
    "Elizabeth",
    "Emily",
    "Emma",
    "Eric",
    "Erica",
    "Erin",
    "Ethan",
    "Evan",
    "Frank",
    "Gabriel",
    "Gary",
    "George",
    "Gina",
    "Grace",
    "Gregory",
    "Hannah",
    "Heather",
    "Helen",
    "Henry",
    "Holly",
    "Ian",
    "Isaac",
    "Jack",
    "Jacob",
    "James",
    "Jamie",
    "Janet",
    "Jared",
    "Jason",
    "Jeffrey",
    "Jennifer",
    "Jeremy",
    "Jessica",
    "Joan",
    "John",
    "Jonathan",
    "Jordan",
    "Joseph",
    "Joshua",
    "Julia",
    "Justin",
    "Karen",
    "Katherine",
    "Kathleen",
    "Kayla",
    "Keith",
    "Kelly",
    "Kenneth",
    "Kevin",
    "Kimberly",
    "Kyle",
    "Laura",
    "Lauren",
    "Leslie",
    "Linda",
    "Lisa",
    "Logan",
    "Lori",
    "Lucas",
    "Madison",
    "Marcus",
    "Margaret",
    "Maria",
    "Mark",
    "Matthew",
    "Megan",
    "Melissa",
    "Michael",
    "Michelle",
    "Monica",
    "Nancy",
    "Natalie",
    "Nathan",
    "Nicholas",
    "Nicole",
    "Olivia",
    "Patricia",
    "Patrick",
    "Paul",
    "Peter",
    "Philip",
    "Rachel",
    "Raymond",
    "Rebecca",
    "Richard",
    "Robert",
    "Ronald",
    "Ryan",
    "Samantha",
    "Samuel",
    "Sandra",
    "Sara",
    "Scott",
    "Sean",
    "Sharon",
    "Shawn",
    "Stephanie",
    "Steven",
    "Susan",
    "Taylor",
    "Teresa",
    "Thomas",
    "Timothy",
    "Todd",
    "Tracy",
    "Travis",
    "Tyler",
    "Valerie",
    "Victoria",
    "Vincent",
    "Wayne",
    "Whitney",
    "William",
    "Zachary",
];
/// Last names, alphabetical.
const LAST_NAMES: &[&str] = &[
    "Abbott",
    "Acevedo",
    "Adams",
    "Aguilar",
    "Alexander",
    "Allen",
    "Alvarez",
    "Anderson",
    "Andrews",
    "Armstrong",
    "Arnold",
    "Austin",
    "Bailey",
    "Baker",
    "Baldwin",
    "Banks",
    "Barber",
    "Barnes",
    "Barrett",
    "Bates",
    "Beck",
    "Bell",
    "Bennett",
    "Berry",
    "Bishop",
    "Black",
    "Blair",
    "Bowman",
    "Boyd",
    "Bradley",
    "Brooks",
    "Brown",
    "Bryant",
    "Burke",
    "Burns",
    "Butler",
    "Campbell",
    "Carlson",
    "Carpenter",
    "Carr",
    "Carroll",
    "Carter",
    "Castillo",
    "Chapman",
    "Chavez",
    "Clark",
    "Cole",
    "Coleman",
    "Collins",
    "Cook",
    "Cooper",
    "Cox",
    "Crawford",
    "Cruz",
    "Cunningham",
    "Daniels",
    "Davidson",
    "Davis",
    "Dean",
    "Diaz",
    "Dixon",
    "Douglas",
    "Duncan",
    "Dunn",
    "Edwards",
    "Elliott",
    "Ellis",
    "Evans",
    "Ferguson",
    "Fisher",
    "Fleming",
    "Fletcher",
    "Ford",
    "Foster",
    "Fowler",
    "Fox",
    "Franklin",
    "Freeman",
    "Fuller",
    "Garcia",
    "Gardner",
    "Garrett",
    "Gibson",
    "Gilbert",
    "Gomez",
    "Gonzalez",
    "Gordon",
    "Graham",
    "Grant",
    "Gray",
    "Green",
    "Griffin",
    "Hall",
    "Hamilton",
    "Hansen",
    "Harper",
    "Harris",
    "Harrison",
    "Hart",
    "Hayes",
    "Henderson",
    "Henry",
    "Hernandez",
    "Hill",
    "Hoffman",
    "Holland",
    "Holmes",
    "Howard",
    "Hudson",
    "Hughes",
    "Hunt",
    "Jackson",
    "Jacobs",
    "James",
    "Jenkins",
    "Johnson",
    "Jones",
    "Jordan",
    "Kelly",
    "Kennedy",
    "Kim",
    "King",
    "Knight",
    "Lambert",
    "Lane",
    "Lawrence",
    "Lee",
    "Lewis",
    "Long",
    "Lopez",
    "Lynch",
    "Marshall",
    "Martin",
    "Martinez",
    "Mason",
    "Matthews",
    "Mcdonald",
    "Meyer",
    "Miller",
    "Mitchell",
    "Moore",
    "Morgan",
    "Morris",
    "Murphy",
    "Murray",
    "Myers",
    "Nelson",
    "Nguyen",
    "Nichols",
    "Obrien",
    "Oliver",
    "Olson",
    "Ortiz",
    "Owens",
    "Palmer",
    "Parker",
    "Patel",
    "Patterson",
    "Payne",
    "Perez",
    "Perkins",
    "Perry",
    "Peters",
    "Phillips",
    "Pierce",
    "Porter",
    "Powell",
    "Price",
    "Quinn",
    "Ramirez",
    "Ramos",
    "Reed",
    "Reid",
    "Reyes",
    "Reynolds",
    "Rice",
    "Richards",
    "Riley",
    "Rivera",
    "Roberts",
    "Robinson",
    "Rodriguez",
    "Rogers",
    "Rose",
    "Ross",
    "Russell",
    "Ryan",
    "Sanchez",
    "Sanders",
    "Schmidt",
    "Scott",
    "Shaw",
    "Simmons",
    "Simpson",
    "Smith",
    "Snyder",
    "Spencer",
    "Stephens",
    "Stevens",
    "Stewart",
    "Stone",
    "Sullivan",
    "Taylor",
    "Thomas",
    "Thompson",
    "Torres",
    "Tucker",
    "Turner",
    "Vargas",
    "Vasquez",
    "Wagner",
    "Walker",
    "Wallace",
    "Walsh",
    "Ward",
    "Warren",
    "Washington",
    "Watson",
    "Weaver",
    "Webb",
    "Wells",
    "West",
    "Wheeler",
    "White",
    "Williams",
    "Willis",
    "Wilson",
    "Wood",
    "Wright",
    "Young",
    "Zimmerman",
];
/// Country names in the Faker style, alphabetical.
const COUNTRIES: &[&str] = &[
    "Afghanistan",
    "Albania",
    "Algeria",
    "American Samoa",
    "Andorra",
    "Angola",
    "Anguilla",
    "Antarctica (the territory South of 60 deg S)",
    "Antigua and Barbuda",
    "Argentina",
    "Armenia",
    "Aruba",
    "Australia",
    "Austria",
    "Azerbaijan",
    "Bahamas",
    "Bahrain",
    "Bangladesh",
    "Barbados",
    "Belarus",
    "Belgium",
    "Belize",
    "Benin",
    "Bermuda",
    "Bhutan",
    "Bolivia",
    "Bosnia and Herzegovina",
    "Botswana",
    "Bouvet Island (Bouvetoya)",
    "Brazil",
    "British Indian Ocean Territory (Chagos Archipelago)",
    "British Virgin Islands",
    "Brunei Darussalam",
    "Bulgaria",
    "Burkina Faso",
    "Burundi",
    "Cambodia",
    "Cameroon",
    "Canada",
    "Cape Verde",
    "Cayman Islands",
    "Central African Republic",
    "Chad",
    "Chile",
    "China",
    "Christmas Island",
    "Cocos (Keeling) Islands",
    "Colombia",
    "Comoros",
    "Congo",
    "Cook Islands",
    "Costa Rica",
    "Cote d'Ivoire",
    "Croatia",
    "Cuba",
    "Cyprus",
    "Czech Republic",
    "Denmark",
    "Djibouti",
    "Dominica",
    "Dominican Republic",
    "Ecuador",
    "Egypt",
    "El Salvador",
    "Equatorial Guinea",
    "Eritrea",
    "Estonia",
    "Ethiopia",
    "Faroe Islands",
    "Falkland Islands (Malvinas)",
    "Fiji",
    "Finland",
    "France",
    "French Guiana",
    "French Polynesia",
    "French Southern Territories",
    "Gabon",
    "Gambia",
    "Georgia",
    "Germany",
    "Ghana",
    "Gibraltar",
    "Greece",
    "Greenland",
    "Grenada",
    "Guadeloupe",
    "Guam",
    "Guatemala",
    "Guernsey",
    "Guinea",
    "Guinea-Bissau",
    "Guyana",
    "Haiti",
    "Heard Island and McDonald Islands",
    "Holy See (Vatican City State)",
    "Honduras",
    "Hong Kong",
    "Hungary",
    "Iceland",
    "India",
    "Indonesia",
    "Iran",
    "Iraq",
    "Ireland",
    "Isle of Man",
    "Israel",
    "Italy",
    "Jamaica",
    "Japan",
    "Jersey",
    "Jordan",
    "Kazakhstan",
    "Kenya",
    "Kiribati",
    "Korea",
    "Kuwait",
    "Kyrgyz Republic",
    "Lao People's Democratic Republic",
    "Latvia",
    "Lebanon",
    "Lesotho",
    "Liberia",
    "Libyan Arab Jamahiriya",
    "Liechtenstein",
    "Lithuania",
    "Luxembourg",
    "Macao",
    "Madagascar",
    "Malawi",
    "Malaysia",
    "Maldives",
    "Mali",
    "Malta",
    "Marshall Islands",
    "Martinique",
    "Mauritania",
    "Mauritius",
    "Mayotte",
    "Mexico",
    "Micronesia",
    "Moldova",
    "Monaco",
    "Mongolia",
    "Montenegro",
    "Montserrat",
    "Morocco",
    "Mozambique",
    "Myanmar",
    "Namibia",
    "Nauru",
    "Nepal",
    "Netherlands",
    "Netherlands Antilles",
    "New Caledonia",
    "New Zealand",
    "Nicaragua",
    "Niger",
    "Nigeria",
    "Niue",
    "Norfolk Island",
    "North Macedonia",
    "Northern Mariana Islands",
    "Norway",
    "Oman",
    "Pakistan",
    "Palau",
    "Palestinian Territory",
    "Panama",
    "Papua New Guinea",
    "Paraguay",
    "Peru",
    "Philippines",
    "Pitcairn Islands",
    "Poland",
    "Portugal",
    "Puerto Rico",
    "Qatar",
    "Reunion",
    "Romania",
    "Russian Federation",
    "Rwanda",
    "Saint Barthelemy",
    "Saint Helena",
    "Saint Kitts and Nevis",
    "Saint Lucia",
    "Saint Martin",
    "Saint Pierre and Miquelon",
    "Saint Vincent and the Grenadines",
    "Samoa",
    "San Marino",
    "Sao Tome and Principe",
    "Saudi Arabia",
    "Senegal",
    "Serbia",
    "Seychelles",
    "Sierra Leone",
    "Singapore",
    "Slovakia (Slovak Republic)",
    "Slovenia",
    "Solomon Islands",
    "Somalia",
    "South Africa",
    "South Georgia and the South Sandwich Islands",
    "Spain",
    "Sri Lanka",
    "Sudan",
    "Suriname",
    "Svalbard & Jan Mayen Islands",
    "Swaziland",
    "Sweden",
    "Switzerland",
    "Syrian Arab Republic",
    "Taiwan",
    "Tajikistan",
    "Tanzania",
    "Thailand",
    "Timor-Leste",
    "Togo",
    "Tokelau",
    "Tonga",
    "Trinidad and Tobago",
    "Tunisia",
    "Turkey",
    "Turkmenistan",
    "Turks and Caicos Islands",
    "Tuvalu",
    "Uganda",
    "Ukraine",
    "United Arab Emirates",
    "United Kingdom",
    "United States Minor Outlying Islands",
    "United States of America",
    "United States Virgin Islands",
    "Uruguay",
    "Uzbekistan",
    "Vanuatu",
    "Venezuela",
    "Vietnam",
    "Wallis and Futuna",
    "Western Sahara",
    "Yemen",
    "Zambia",
    "Zimbabwe",
];

// ---------------------------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------------------------

/// Domains keep the independent draws of one seed apart.
const D_SEQ: u64 = 1;
const D_PIN: u64 = 2;
const D_GEO: u64 = 3;
const D_USER: u64 = 4;
const D_POSTER: u64 = 5;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generator for one (seed, domain, key): portable, and independent of every other key.
fn rng_for(seed: u64, domain: u64, key: u64) -> Pcg64Mcg {
    let a = splitmix64(seed ^ splitmix64(domain));
    let hi = splitmix64(a ^ key);
    let lo = splitmix64(hi ^ a.rotate_left(17));
    Pcg64Mcg::new((u128::from(hi) << 64) | u128::from(lo))
}

/// Piecewise-linear inverse of a distribution given by its quantiles at equal steps.
fn quantile(table: &[f64], u: f64) -> f64 {
    let steps = (table.len() - 1) as f64;
    let x = (u * steps).clamp(0.0, steps);
    let i = (x as usize).min(table.len() - 2);
    let f = x - i as f64;
    table[i] + (table[i + 1] - table[i]) * f
}

/// Index drawn from integer weights.
fn weighted(rng: &mut Pcg64Mcg, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().sum();
    let mut r = rng.random_range(0..total);
    for (i, w) in weights.enumerate() {
        if r < w {
            return i;
        }
        r -= w;
    }
    unreachable!("r < total")
}

fn pick<'a>(rng: &mut Pcg64Mcg, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// An index into a list of `len`, skewed to its start like the sample's names and countries.
fn skewed_index(u: f64, len: usize) -> usize {
    ((quantile(&SKEW_Q, u) * len as f64) as usize).min(len - 1)
}

// ---------------------------------------------------------------------------------------------
// Output formatting (Python `json.dumps` defaults)
// ---------------------------------------------------------------------------------------------

/// Writes a JSON object the way Python's `json.dumps` does by default.
struct PyJson {
    buf: Vec<u8>,
}

impl PyJson {
    fn new(capacity: usize) -> Self {
        PyJson {
            buf: Vec::with_capacity(capacity),
        }
    }
    fn key(&mut self, key: &str) {
        self.buf
            .extend_from_slice(if self.buf.is_empty() { b"{" } else { b", " });
        py_str(&mut self.buf, key);
        self.buf.extend_from_slice(b": ");
    }
    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        py_str(&mut self.buf, value);
    }
    fn int(&mut self, key: &str, value: i64) {
        self.key(key);
        self.buf.extend_from_slice(value.to_string().as_bytes());
    }
    fn float(&mut self, key: &str, value: f64) {
        self.key(key);
        self.buf.extend_from_slice(py_float(value).as_bytes());
    }
    fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }
}

/// A JSON string as `json.dumps(ensure_ascii=True)` writes it.
fn py_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(c as u8),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                }
            }
        }
    }
    out.push(b'"');
}

/// A float as Python's `repr` writes it: shortest round-trip digits, `.0` on integral
/// values, exponent form (`1e-05`) below 1e-4 and from 1e16 on.
fn py_float(v: f64) -> String {
    if !v.is_finite() {
        // json.dumps writes these (not valid JSON); the emulator never produces them.
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').expect("exponent form");
        let exp: i32 = exp.parse().expect("exponent");
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{v}");
    if s.contains('.') { s } else { s + ".0" }
}

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

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD HH:MM:SS` of seconds since the epoch (UTC), as Python's `str(datetime)`.
fn format_datetime(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// First and last second of a span of whole days.
fn day_span(from: (i32, u32, u32), to: (i32, u32, u32)) -> (i64, i64) {
    (
        days_from_civil(from.0, from.1, from.2) * 86_400,
        days_from_civil(to.0, to.1, to.2) * 86_400 + 86_399,
    )
}

// ---------------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------------

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
    /// Cumulative popularity of the repeated ("head") posters, normalised to 1.
    head_cdf: Vec<f64>,
    /// Topics per category, split once.
    topics: Vec<Vec<&'static str>>,
}

impl Emulator {
    /// Takes anything that names the parameters (the connector's settings convert), so callers
    /// keep their own settings type and the generator stays below the connector layer.
    pub fn new(parameters: impl Into<Parameters>) -> Self {
        let Parameters { seed, universe } = parameters.into();
        let universe = universe.max(1);
        let heads = (universe / 8).clamp(1, 200_000) as usize;
        let mut head_cdf = Vec::with_capacity(heads);
        let mut total = 0.0;
        for rank in 1..=heads {
            total += (rank as f64).powf(-HEAD_ZIPF);
            head_cdf.push(total);
        }
        for c in &mut head_cdf {
            *c /= total;
        }
        Emulator {
            seed,
            universe,
            head_cdf,
            topics: TOPICS.iter().map(|t| t.split(',').collect()).collect(),
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
        let topics = &self.topics[category];

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
        let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
        let unique_id = format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );

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
            let hash: String = (0..4)
                .map(|_| format!("{:08x}", rng.random::<u32>()))
                .collect();
            let dirs = format!("{}/{}/{}", &hash[0..2], &hash[2..4], &hash[4..6]);
            if kind == "image" {
                let ext = IMAGE_EXTS[weighted(rng, IMAGE_EXTS.iter().map(|e| e.1))].0;
                format!("https://i.pinimg.com/originals/{dirs}/{hash}.{ext}")
            } else {
                format!(
                    "https://i.pinimg.com/videos/thumbnails/originals/{dirs}/{hash}.0000001.jpg"
                )
            }
        };
        let category = CATEGORIES[category].0;

        let mut j = PyJson::new(1024);
        j.int("index", index as i64);
        j.str("unique_id", &unique_id);
        j.str("title", &title);
        j.str("description", &description);
        j.str("poster_name", &poster.name);
        j.str("follower_count", &poster.follower_count);
        j.str("tag_list", &tag_list);
        j.str("is_image_or_video", kind);
        j.str("image_src", &image_src);
        j.int("downloaded", i64::from(!image_error));
        j.str("save_location", &format!("Local save in /data/{category}"));
        j.str("category", category);
        j.finish()
    }

    /// The poster of a (non-broken) post: one of the repeated posters, or its own.
    fn poster_of(&self, rng: &mut Pcg64Mcg, index: u64) -> Poster {
        if rng.random_bool(HEAD_SHARE) {
            let u: f64 = rng.random();
            let rank = self.head_cdf.partition_point(|&c| c < u);
            self.poster(rank as u64, true)
        } else {
            self.poster(self.head_cdf.len() as u64 + index, false)
        }
    }

    fn poster(&self, id: u64, head: bool) -> Poster {
        let rng = &mut rng_for(self.seed, D_POSTER, id);
        let brand = |rng: &mut Pcg64Mcg| pick(rng, BRAND_WORDS);
        let name = match rng.random_range(0..100) {
            0..25 => format!("{} {}", pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES)),
            25..32 => format!(
                "{} {}. {}",
                pick(rng, FIRST_NAMES),
                char::from(b'A' + rng.random_range(0..26u8)),
                pick(rng, LAST_NAMES)
            ),
            32..42 => format!("{}{}", brand(rng), brand(rng)),
            42..50 => format!("{}{}{}", brand(rng), brand(rng), brand(rng)),
            50..60 => format!("{} {} {}", brand(rng), brand(rng), pick(rng, BRAND_KINDS)),
            60..68 => format!("{}{}{}.com", brand(rng), brand(rng), brand(rng)),
            68..78 => format!(
                "The {} {} {}",
                brand(rng),
                brand(rng),
                pick(rng, BRAND_KINDS)
            ),
            78..88 => format!(
                "{} | {} {} {}",
                pick(rng, FIRST_NAMES),
                brand(rng),
                brand(rng),
                pick(rng, BRAND_KINDS)
            ),
            88..95 => format!(
                "{}{}{}",
                pick(rng, FIRST_NAMES).to_lowercase(),
                pick(rng, LAST_NAMES).to_lowercase(),
                rng.random_range(1..100)
            ),
            _ => format!(
                "{} {} - {} {} Blog & {} Tips",
                pick(rng, FIRST_NAMES),
                pick(rng, LAST_NAMES),
                brand(rng),
                brand(rng),
                brand(rng)
            ),
        };
        let forms = if head { FORMS_HEAD } else { FORMS_TAIL };
        let follower_count = match weighted(rng, forms.into_iter()) {
            0 => format!("{}", quantile(&DIGITS_Q, rng.random()) as u64),
            1 => {
                let table = if head { &K_HEAD_Q } else { &K_TAIL_Q };
                format!("{}k", quantile(table, rng.random()) as u64)
            }
            _ => {
                let m = if head {
                    M_HEAD[weighted(rng, M_HEAD.iter().map(|m| m.1))].0
                } else {
                    M_TAIL[weighted(rng, M_TAIL.iter().map(|m| m.1))].0
                };
                format!("{m}M")
            }
        };
        Poster {
            name,
            follower_count,
        }
    }

    fn fill_slots(&self, rng: &mut Pcg64Mcg, template: &str, topics: &[&str]) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = open + rest[open..].find('}').expect("closed slot");
            let slot = &rest[open + 1..close];
            let word = match slot.to_ascii_uppercase().as_str() {
                "A" => pick(rng, ADJECTIVES).to_string(),
                "T" | "T2" => pick(rng, topics).to_string(),
                "S" => pick(rng, SUFFIXES).to_string(),
                "N" => rng.random_range(5..=50).to_string(),
                "V" => pick(rng, VERBS).to_string(),
                "U" => pick(rng, AUDIENCES).to_string(),
                "W" => pick(rng, SEASONS).to_string(),
                "P" => pick(rng, PLACES).to_string(),
                other => unreachable!("unknown slot {other}"),
            };
            if slot
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            {
                out.push_str(&word.to_lowercase());
            } else {
                out.push_str(&word);
            }
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Whole fragments, drawn until about `words` words (cut only if the first is too long).
    fn fill_words(
        &self,
        rng: &mut Pcg64Mcg,
        words: usize,
        templates: &[&str],
        topics: &[&str],
        shape: fn(String) -> String,
    ) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut count = 0;
        let mut misses = 0;
        while count < words && misses < 6 {
            let template = pick(rng, templates);
            let part = shape(self.fill_slots(rng, template, topics));
            let n = part.split(' ').count();
            if parts.is_empty() || count + n <= words {
                count += n;
                parts.push(part);
            } else {
                misses += 1;
            }
        }
        let text = parts.join(" ");
        if count > words {
            text.split(' ').take(words).collect::<Vec<_>>().join(" ")
        } else {
            text
        }
    }

    fn title(&self, rng: &mut Pcg64Mcg, topics: &[&str]) -> String {
        let words = quantile(&TITLE_WORDS_Q, rng.random()).round().max(1.0) as usize;
        self.fill_words(rng, words, TITLE_PARTS, topics, |s| s)
    }

    fn description(&self, rng: &mut Pcg64Mcg, topics: &[&str]) -> String {
        fn capitalise(mut s: String) -> String {
            if let Some(first) = s.get(0..1) {
                let upper = first.to_ascii_uppercase();
                s.replace_range(0..1, &upper);
            }
            s
        }
        if rng.random_bool(P_DESC_CUT) {
            // Cut like the real ones: 176-177 characters, then an ellipsis and a no-break space.
            let keep = if rng.random_bool(P_DESC_CUT_179) {
                177
            } else {
                176
            };
            let mut text = String::new();
            while text.len() < keep + 1 {
                if !text.is_empty() {
                    text.push(' ');
                }
                let template = pick(rng, SENTENCES);
                text.push_str(&capitalise(self.fill_slots(rng, template, topics)));
            }
            text.truncate(keep);
            text.push_str("\u{2026}\u{a0}");
            text
        } else {
            let words = quantile(&DESC_WORDS_Q, rng.random()).round().max(1.0) as usize;
            let mut text = self.fill_words(rng, words, SENTENCES, topics, capitalise);
            text.truncate(180);
            text
        }
    }

    fn tags(&self, rng: &mut Pcg64Mcg, topics: &[&str]) -> String {
        let n = TAG_COUNTS[weighted(rng, TAG_COUNTS.iter().map(|t| t.1))].0;
        let tags: Vec<String> = (0..n)
            .map(|_| {
                let template = match rng.random_range(0..100) {
                    0..40 => "{A} {T}",
                    40..65 => "{T} {S}",
                    65..85 => "{T}",
                    _ => "{A} {T} {S}",
                };
                self.fill_slots(rng, template, topics)
            })
            .collect();
        tags.join(",")
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

        let mut j = PyJson::new(160);
        j.int("ind", index as i64);
        j.str("timestamp", &format_datetime(timestamp));
        j.float("latitude", latitude);
        j.float("longitude", longitude);
        j.str("country", country);
        j.finish()
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
        let mut age = 60;
        for (i, &count) in AGE_HIST.iter().enumerate() {
            if target < count {
                age = 20 + i as i64;
                break;
            }
            target -= count;
        }
        let (from, to) = day_span(JOINED_FROM, JOINED_TO);
        let joined = from + (quantile(&SKEW_Q, u_joined) * (to - from) as f64) as i64;

        let mut j = PyJson::new(128);
        j.int("ind", index as i64);
        j.str("first_name", first);
        j.str("last_name", last);
        j.int("age", age);
        j.str("date_joined", &format_datetime(joined.min(to)));
        j.finish()
    }
}

/// Writes events 0..`events` of `emulator` in order to `DIR/pin.jsonl`, `geo.jsonl` and
/// `user.jsonl`, one JSON object per line: the files `pinstream emulate --to file:` makes and the
/// benchmarks read.
pub fn write_jsonl(emulator: &Emulator, events: u64, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let open = |name: &str| -> io::Result<BufWriter<std::fs::File>> {
        Ok(BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(dir.join(name))?,
        ))
    };
    let (mut pin, mut geo, mut user) =
        (open("pin.jsonl")?, open("geo.jsonl")?, open("user.jsonl")?);
    for seq in 0..events {
        let event = emulator.event(seq);
        for (w, bytes) in [
            (&mut pin, &event.pin),
            (&mut geo, &event.geo),
            (&mut user, &event.user),
        ] {
            w.write_all(bytes)?;
            w.write_all(b"\n")?;
        }
    }
    for mut w in [pin, geo, user] {
        w.flush()?;
    }
    Ok(())
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
                let text = py_float(v);
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
    fn python_formatting() {
        assert_eq!(py_float(-88.8298), "-88.8298");
        assert_eq!(py_float(-170.188), "-170.188");
        assert_eq!(py_float(5.0), "5.0");
        assert_eq!(py_float(-0.0), "-0.0");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(0.00001234), "1.234e-05");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(round_significant(-88.829_812_3, 6), -88.8298);
        assert_eq!(round_significant(0.001_234_567_8, 6), 0.001_234_57);
        let mut s = Vec::new();
        py_str(&mut s, "a\"b\\c\n\u{2026}\u{a0}\u{1F600}");
        assert_eq!(
            String::from_utf8(s).unwrap(),
            r#""a\"b\\c\n\u2026\u00a0\ud83d\ude00""#
        );
        assert_eq!(format_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(
            format_datetime(days_from_civil(2020, 2, 29) * 86_400 + 3661),
            "2020-02-29 01:01:01"
        );
        for day in [-1000, 0, 17_000, 19_283, 100_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y as i32, m, d), day);
        }
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

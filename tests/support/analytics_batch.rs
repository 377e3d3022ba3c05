//! A batch reference for the live analytics (SPEC §3): every aggregate recomputed from scratch
//! over the deduplicated tables, the plain way (nested loops, maps, sorts), written from the
//! SPEC and not from the engine's dataflow, so that the incremental results can be checked
//! against it after any sequence of updates.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Datelike;
use pinstream::analytics::Cell;
use pinstream::clean::{GeoRow, PinRow, UserRow};

/// Every SPEC §3 aggregate computed from scratch over the (already deduplicated) tables.
/// `pins` carry the arrival time at which each distinct pin row was first seen, for trending.
///
/// Each aggregate's rows are in SPEC column order and sorted; all 11 names are present.
pub fn batch(
    pins: &[(PinRow, i64)],
    geos: &[GeoRow],
    users: &[UserRow],
    now_micros: i64,
    window_micros: i64,
) -> BTreeMap<&'static str, Vec<Vec<Cell>>> {
    let mut geos_by_ind: HashMap<i64, Vec<&GeoRow>> = HashMap::new();
    for geo in geos {
        geos_by_ind.entry(geo.ind).or_default().push(geo);
    }
    let mut users_by_ind: HashMap<i64, Vec<&UserRow>> = HashMap::new();
    for user in users {
        users_by_ind.entry(user.ind).or_default().push(user);
    }
    // Every pin row with every geo (user) row of the same ind, each pair once.
    let mut pin_geo: Vec<(&PinRow, &GeoRow)> = Vec::new();
    let mut pin_user: Vec<(&PinRow, &UserRow)> = Vec::new();
    for (pin, _) in pins {
        for geo in geos_by_ind.get(&pin.ind).into_iter().flatten() {
            pin_geo.push((pin, geo));
        }
        for user in users_by_ind.get(&pin.ind).into_iter().flatten() {
            pin_user.push((pin, user));
        }
    }

    let mut out: BTreeMap<&'static str, Vec<Vec<Cell>>> = BTreeMap::new();

    // q1: per country, the most frequent category (ties kept).
    let mut counts: BTreeMap<(Option<String>, Option<String>), i64> = BTreeMap::new();
    for (pin, geo) in &pin_geo {
        *counts
            .entry((geo.country.clone(), pin.category.clone()))
            .or_default() += 1;
    }
    out.insert(
        "q1_popular_category_by_country",
        argmax_with_ties(counts)
            .into_iter()
            .map(|(country, category, n)| vec![text(country), text(category), Cell::Long(n)])
            .collect(),
    );

    // q2: per year of geo.timestamp (2018..=2022), the most frequent category.
    let mut counts: BTreeMap<(i64, Option<String>), i64> = BTreeMap::new();
    for (pin, geo) in &pin_geo {
        if let Some(y) = year(geo.timestamp).filter(|y| (2018..=2022).contains(y)) {
            *counts.entry((y, pin.category.clone())).or_default() += 1;
        }
    }
    out.insert(
        "q2_popular_category_by_year",
        argmax_with_ties(counts)
            .into_iter()
            .map(|(y, category, n)| vec![Cell::Long(y), text(category), Cell::Long(n)])
            .collect(),
    );

    // q3: per country, the poster(s) with the highest follower_count.
    let mut max_by_country: BTreeMap<Option<String>, i64> = BTreeMap::new();
    for (pin, geo) in &pin_geo {
        if pin.poster_name.is_some() {
            let max = max_by_country
                .entry(geo.country.clone())
                .or_insert(pin.follower_count);
            *max = (*max).max(pin.follower_count);
        }
    }
    let mut q3: BTreeSet<(Option<String>, Option<String>, i64)> = BTreeSet::new();
    for (pin, geo) in &pin_geo {
        if pin.poster_name.is_some() && pin.follower_count == max_by_country[&geo.country] {
            q3.insert((
                geo.country.clone(),
                pin.poster_name.clone(),
                pin.follower_count,
            ));
        }
    }

    // q3b: the country(ies) of the overall highest follower_count among q3's rows.
    let overall = q3.iter().map(|(_, _, n)| *n).max();
    let mut q3b: BTreeSet<(Option<String>, i64)> = BTreeSet::new();
    for (country, _, n) in &q3 {
        if Some(*n) == overall {
            q3b.insert((country.clone(), *n));
        }
    }
    out.insert(
        "q3_top_user_by_country",
        q3.into_iter()
            .map(|(country, poster, n)| vec![text(country), text(poster), Cell::Long(n)])
            .collect(),
    );
    out.insert(
        "q3b_top_country",
        q3b.into_iter()
            .map(|(country, n)| vec![text(country), Cell::Long(n)])
            .collect(),
    );

    // q4: per age group, the most frequent category.
    let mut counts: BTreeMap<(&'static str, Option<String>), i64> = BTreeMap::new();
    for (pin, user) in &pin_user {
        if let Some(group) = age_group(user.age) {
            *counts.entry((group, pin.category.clone())).or_default() += 1;
        }
    }
    out.insert(
        "q4_popular_category_by_age_group",
        argmax_with_ties(counts)
            .into_iter()
            .map(|(group, category, n)| {
                vec![text(Some(group.to_owned())), text(category), Cell::Long(n)]
            })
            .collect(),
    );

    // q5: per age group, the median follower_count over the joined pairs.
    let mut values: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
    for (pin, user) in &pin_user {
        if let Some(group) = age_group(user.age) {
            values.entry(group).or_default().push(pin.follower_count);
        }
    }
    out.insert(
        "q5_median_followers_by_age_group",
        values
            .into_iter()
            .map(|(group, v)| vec![text(Some(group.to_owned())), Cell::Double(median(v))])
            .collect(),
    );

    // q6: user rows per join year (2015..=2020).
    let mut joined: BTreeMap<i64, i64> = BTreeMap::new();
    for user in users {
        if let Some(y) = join_year(user) {
            *joined.entry(y).or_default() += 1;
        }
    }
    out.insert(
        "q6_users_joined_by_year",
        joined
            .into_iter()
            .map(|(y, n)| vec![Cell::Long(y), Cell::Long(n)])
            .collect(),
    );

    // q7: per join year (2015..=2020), the median follower_count over the joined pairs.
    let mut values: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (pin, user) in &pin_user {
        if let Some(y) = join_year(user) {
            values.entry(y).or_default().push(pin.follower_count);
        }
    }
    out.insert(
        "q7_median_followers_by_join_year",
        values
            .into_iter()
            .map(|(y, v)| vec![Cell::Long(y), Cell::Double(median(v))])
            .collect(),
    );

    // q8: per (age group, join year 2015..=2020), the median over the joined pairs.
    let mut values: BTreeMap<(&'static str, i64), Vec<i64>> = BTreeMap::new();
    for (pin, user) in &pin_user {
        if let (Some(group), Some(y)) = (age_group(user.age), join_year(user)) {
            values
                .entry((group, y))
                .or_default()
                .push(pin.follower_count);
        }
    }
    out.insert(
        "q8_median_followers_by_age_group_and_join_year",
        values
            .into_iter()
            .map(|((group, y), v)| {
                vec![
                    text(Some(group.to_owned())),
                    Cell::Long(y),
                    Cell::Double(median(v)),
                ]
            })
            .collect(),
    );

    // profile_popularity: per poster, highest follower_count and number of pin rows; the top
    // 100 by follower_count plus every poster tied with the 100th.
    let mut posters: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (pin, _) in pins {
        if let Some(name) = &pin.poster_name {
            let entry = posters
                .entry(name.clone())
                .or_insert((pin.follower_count, 0));
            entry.0 = entry.0.max(pin.follower_count);
            entry.1 += 1;
        }
    }
    let mut ranked: Vec<i64> = posters.values().map(|(followers, _)| *followers).collect();
    ranked.sort_by(|a, b| b.cmp(a));
    let threshold = if ranked.len() > 100 {
        ranked[99]
    } else {
        i64::MIN
    };
    out.insert(
        "profile_popularity",
        posters
            .into_iter()
            .filter(|(_, (followers, _))| *followers >= threshold)
            .map(|(name, (followers, posts))| {
                vec![text(Some(name)), Cell::Long(followers), Cell::Long(posts)]
            })
            .collect(),
    );

    // trending_categories: pin rows first seen in (now - window, now], per category.
    let mut counts: BTreeMap<Option<String>, i64> = BTreeMap::new();
    for (pin, arrival) in pins {
        if *arrival > now_micros - window_micros && *arrival <= now_micros {
            *counts.entry(pin.category.clone()).or_default() += 1;
        }
    }
    out.insert(
        "trending_categories",
        counts
            .into_iter()
            .map(|(category, n)| vec![text(category), Cell::Long(n)])
            .collect(),
    );

    for rows in out.values_mut() {
        rows.sort();
    }
    debug_assert_eq!(out.len(), pinstream::analytics::AGGREGATES.len());
    out
}

fn text(value: Option<String>) -> Cell {
    Cell::Text(value)
}

/// UTC calendar year of a timestamp in microseconds since the epoch.
pub fn year(micros: i64) -> Option<i64> {
    chrono::DateTime::from_timestamp_micros(micros).map(|t| i64::from(t.year()))
}

fn join_year(user: &UserRow) -> Option<i64> {
    year(user.date_joined).filter(|y| (2015..=2020).contains(y))
}

/// SPEC §3 age groups; under 18 has none.
pub fn age_group(age: i32) -> Option<&'static str> {
    match age {
        18..=24 => Some("18-24"),
        25..=35 => Some("25-35"),
        36..=50 => Some("36-50"),
        51.. => Some("+50"),
        _ => None,
    }
}

/// Exact median: the middle value, or the mean of the two middle values.
pub fn median(mut values: Vec<i64>) -> f64 {
    assert!(!values.is_empty());
    values.sort();
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        (i128::from(values[n / 2 - 1]) + i128::from(values[n / 2])) as f64 / 2.0
    }
}

/// Per group key, the (category, count) entries with the group's highest count, ties kept.
fn argmax_with_ties<K: Ord + Clone>(
    counts: BTreeMap<(K, Option<String>), i64>,
) -> Vec<(K, Option<String>, i64)> {
    let mut max: BTreeMap<K, i64> = BTreeMap::new();
    for ((key, _), n) in &counts {
        let m = max.entry(key.clone()).or_insert(*n);
        *m = (*m).max(*n);
    }
    counts
        .into_iter()
        .filter(|((key, _), n)| *n == max[key])
        .map(|((key, category), n)| (key, category, n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinstream::clean::Degrees;

    fn s(value: &str) -> Option<String> {
        Some(value.to_owned())
    }

    /// Midnight UTC of the date, in microseconds.
    fn day(y: i32, m: u32, d: u32) -> i64 {
        chrono::NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    fn pin(ind: i64, poster: Option<&str>, followers: i64, category: Option<&str>) -> PinRow {
        PinRow {
            ind,
            unique_id: format!("00000000-0000-0000-0000-{ind:012}"),
            title: None,
            description: None,
            follower_count: followers,
            poster_name: poster.map(str::to_owned),
            tag_list: None,
            is_image_or_video: None,
            image_src: None,
            save_location: None,
            category: category.map(str::to_owned),
        }
    }

    fn geo(ind: i64, country: Option<&str>, timestamp: i64) -> GeoRow {
        GeoRow {
            ind,
            country: country.map(str::to_owned),
            coordinates: [Degrees(0.0), Degrees(0.0)],
            timestamp,
        }
    }

    fn user(ind: i64, age: i32, joined: i64) -> UserRow {
        UserRow {
            ind,
            user_name: format!("User {ind}"),
            age,
            date_joined: joined,
        }
    }

    fn t(value: &str) -> Cell {
        Cell::Text(s(value))
    }
    const NULL: Cell = Cell::Text(None);
    fn l(value: i64) -> Cell {
        Cell::Long(value)
    }
    fn d(value: f64) -> Cell {
        Cell::Double(value)
    }

    fn run(
        pins: &[PinRow],
        geos: &[GeoRow],
        users: &[UserRow],
    ) -> BTreeMap<&'static str, Vec<Vec<Cell>>> {
        let pins: Vec<(PinRow, i64)> = pins.iter().cloned().map(|p| (p, 0)).collect();
        batch(&pins, geos, users, 0, 1)
    }

    #[test]
    fn every_aggregate_is_present_even_when_empty() {
        let out = batch(&[], &[], &[], 0, 1);
        let names: Vec<&str> = pinstream::analytics::AGGREGATES
            .iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(
            out.keys().copied().collect::<BTreeSet<_>>(),
            names.into_iter().collect()
        );
        assert!(out.values().all(Vec::is_empty));
    }

    #[test]
    fn helpers() {
        assert_eq!(age_group(17), None);
        assert_eq!(age_group(0), None);
        assert_eq!(age_group(18), Some("18-24"));
        assert_eq!(age_group(24), Some("18-24"));
        assert_eq!(age_group(25), Some("25-35"));
        assert_eq!(age_group(35), Some("25-35"));
        assert_eq!(age_group(36), Some("36-50"));
        assert_eq!(age_group(50), Some("36-50"));
        assert_eq!(age_group(51), Some("+50"));
        assert_eq!(age_group(150), Some("+50"));
        assert_eq!(median(vec![5]), 5.0);
        assert_eq!(median(vec![3, 1, 2]), 2.0);
        assert_eq!(median(vec![4, 1, 3, 2]), 2.5);
        assert_eq!(median(vec![1, 2]), 1.5);
        assert_eq!(median(vec![7, 7]), 7.0);
        assert_eq!(median(vec![i64::MAX, i64::MAX]), i64::MAX as f64);
        assert_eq!(year(0), Some(1970));
        assert_eq!(year(-1), Some(1969));
        assert_eq!(year(day(2018, 1, 1)), Some(2018));
        assert_eq!(year(day(2018, 1, 1) - 1), Some(2017));
        assert_eq!(year(day(2022, 12, 31) + 86_400_000_000 - 1), Some(2022));
        assert_eq!(year(day(2020, 2, 29)), Some(2020));
    }

    #[test]
    fn q1_argmax_per_country_with_ties_and_null_values() {
        let pins = [
            pin(1, Some("a"), 10, Some("art")),
            pin(2, Some("b"), 10, Some("art")),
            pin(3, Some("c"), 10, Some("food")),
            pin(4, Some("d"), 10, Some("food")),
            pin(5, Some("e"), 10, Some("diy")),
            pin(6, Some("f"), 10, None),
            pin(7, Some("g"), 10, Some("art")),
            pin(8, Some("h"), 10, None),
            pin(9, Some("i"), 10, None),
            pin(10, Some("j"), 10, Some("art")),
        ];
        let ts = day(2019, 6, 1);
        let geos = [
            // X: art 2, food 2, diy 1 -> art and food tie.
            geo(1, Some("X"), ts),
            geo(2, Some("X"), ts),
            geo(3, Some("X"), ts),
            geo(4, Some("X"), ts),
            geo(5, Some("X"), ts),
            // Y: null category 1, art 1 -> tie including the null category.
            geo(6, Some("Y"), ts),
            geo(7, Some("Y"), ts),
            // Null country: null category 2 -> wins over art 1.
            geo(8, None, ts),
            geo(9, None, ts),
            geo(10, None, ts),
        ];
        let out = run(&pins, &geos, &[]);
        assert_eq!(
            out["q1_popular_category_by_country"],
            vec![
                vec![NULL, NULL, l(2)],
                vec![t("X"), t("art"), l(2)],
                vec![t("X"), t("food"), l(2)],
                vec![t("Y"), NULL, l(1)],
                vec![t("Y"), t("art"), l(1)],
            ]
        );
    }

    #[test]
    fn joins_count_every_pair_and_unmatched_rows_drop_out() {
        // Two distinct pin rows and two distinct geo rows of ind 1: four pairs.
        let mut other = pin(1, Some("a"), 5, Some("art"));
        other.title = s("another title");
        let pins = [
            pin(1, Some("a"), 5, Some("art")),
            other,
            pin(2, Some("b"), 9, Some("food")),
        ];
        let geos = [
            geo(1, Some("X"), day(2019, 1, 1)),
            geo(1, Some("X"), day(2020, 1, 1)),
            geo(3, Some("X"), day(2020, 1, 1)),
        ];
        let out = run(&pins, &geos, &[]);
        assert_eq!(
            out["q1_popular_category_by_country"],
            vec![vec![t("X"), t("art"), l(4)]]
        );
        assert_eq!(
            out["q2_popular_category_by_year"],
            vec![vec![l(2019), t("art"), l(2)], vec![l(2020), t("art"), l(2)]]
        );
        assert_eq!(
            out["q3_top_user_by_country"],
            vec![vec![t("X"), t("a"), l(5)]]
        );
        // No user rows: every pin ⋈ user aggregate is empty, q6 too.
        for name in [
            "q4_popular_category_by_age_group",
            "q5_median_followers_by_age_group",
            "q6_users_joined_by_year",
            "q7_median_followers_by_join_year",
            "q8_median_followers_by_age_group_and_join_year",
        ] {
            assert!(out[name].is_empty(), "{name}");
        }
        // profile_popularity counts pin rows, not pairs: "a" has two rows.
        assert_eq!(
            out["profile_popularity"],
            vec![vec![t("a"), l(5), l(2)], vec![t("b"), l(9), l(1)]]
        );
    }

    #[test]
    fn q2_only_years_2018_to_2022() {
        let pins: Vec<PinRow> = (1..=8)
            .map(|i| {
                pin(
                    i,
                    Some("p"),
                    1,
                    Some(if i % 2 == 0 { "even" } else { "odd" }),
                )
            })
            .collect();
        let geos = [
            geo(1, Some("X"), day(2017, 12, 31)),
            geo(2, Some("X"), day(2018, 1, 1) - 1),
            geo(3, Some("X"), day(2018, 1, 1)),
            geo(4, Some("X"), day(2018, 7, 1)),
            geo(5, Some("X"), day(2022, 12, 31)),
            geo(6, Some("X"), day(2023, 1, 1)),
            geo(7, Some("X"), day(2020, 3, 3)),
            geo(8, Some("X"), day(2020, 3, 4)),
        ];
        let out = run(&pins, &geos, &[]);
        assert_eq!(
            out["q2_popular_category_by_year"],
            vec![
                vec![l(2018), t("even"), l(1)],
                vec![l(2018), t("odd"), l(1)],
                vec![l(2020), t("even"), l(1)],
                vec![l(2020), t("odd"), l(1)],
                vec![l(2022), t("odd"), l(1)],
            ]
        );
    }

    #[test]
    fn q3_and_q3b_ties_and_null_posters() {
        let pins = [
            // X: a 100 and b 100 tie; the null poster with 500 is left out.
            pin(1, Some("a"), 100, Some("art")),
            pin(2, Some("b"), 100, Some("art")),
            pin(3, None, 500, Some("art")),
            pin(4, Some("c"), 50, Some("art")),
            // a again in X with the same count: one row.
            pin(5, Some("a"), 100, Some("food")),
            // Y: d 100, ties X for the overall max.
            pin(6, Some("d"), 100, None),
            // Z: e 7.
            pin(7, Some("e"), 7, None),
            // W: only null posters -> no q3 row for W.
            pin(8, None, 1000, None),
            // Null country: f 100.
            pin(9, Some("f"), 100, None),
        ];
        let ts = day(2019, 1, 1);
        let geos = [
            geo(1, Some("X"), ts),
            geo(2, Some("X"), ts),
            geo(3, Some("X"), ts),
            geo(4, Some("X"), ts),
            geo(5, Some("X"), ts),
            geo(6, Some("Y"), ts),
            geo(7, Some("Z"), ts),
            geo(8, Some("W"), ts),
            geo(9, None, ts),
        ];
        let out = run(&pins, &geos, &[]);
        assert_eq!(
            out["q3_top_user_by_country"],
            vec![
                vec![NULL, t("f"), l(100)],
                vec![t("X"), t("a"), l(100)],
                vec![t("X"), t("b"), l(100)],
                vec![t("Y"), t("d"), l(100)],
                vec![t("Z"), t("e"), l(7)],
            ]
        );
        assert_eq!(
            out["q3b_top_country"],
            vec![
                vec![NULL, l(100)],
                vec![t("X"), l(100)],
                vec![t("Y"), l(100)]
            ]
        );

        // A single winner.
        let out = run(&pins[..7], &geos[..7], &[]);
        assert_eq!(
            out["q3b_top_country"],
            vec![vec![t("X"), l(100)], vec![t("Y"), l(100)]]
        );
        let out = run(
            &[pin(1, Some("a"), 3, None), pin(2, Some("b"), 4, None)],
            &[geo(1, Some("X"), ts), geo(2, Some("Y"), ts)],
            &[],
        );
        assert_eq!(out["q3b_top_country"], vec![vec![t("Y"), l(4)]]);
        // Only null posters: q3 and q3b empty.
        let out = run(&[pin(1, None, 3, None)], &[geo(1, Some("X"), ts)], &[]);
        assert!(out["q3_top_user_by_country"].is_empty());
        assert!(out["q3b_top_country"].is_empty());
    }

    #[test]
    fn q4_q5_age_groups_ties_under_18_and_medians() {
        let joined = day(2016, 5, 5);
        let pins = [
            // 18-24: art 1, food 1 -> tie; followers 10, 20 -> median 15 (even).
            pin(1, Some("a"), 10, Some("art")),
            pin(2, Some("b"), 20, Some("food")),
            // 25-35: art 2, null 1; followers 1, 2, 100 -> median 2 (odd).
            pin(3, Some("c"), 1, Some("art")),
            pin(4, Some("d"), 2, Some("art")),
            pin(5, Some("e"), 100, None),
            // Under 18: left out everywhere.
            pin(6, Some("f"), 999, Some("kids")),
            pin(7, Some("g"), 999, Some("kids")),
            // +50: one pin, two user rows of ind 8 (ages 60 and 51) -> two pairs.
            pin(8, Some("h"), 3, Some("travel")),
        ];
        let users = [
            user(1, 18, joined),
            user(2, 24, joined),
            user(3, 25, joined),
            user(4, 35, joined),
            user(5, 30, joined),
            user(6, 17, joined),
            user(7, 0, joined),
            user(8, 60, joined),
            user(8, 51, joined),
        ];
        let out = run(&pins, &[], &users);
        assert_eq!(
            out["q4_popular_category_by_age_group"],
            vec![
                vec![t("+50"), t("travel"), l(2)],
                vec![t("18-24"), t("art"), l(1)],
                vec![t("18-24"), t("food"), l(1)],
                vec![t("25-35"), t("art"), l(2)],
            ]
        );
        assert_eq!(
            out["q5_median_followers_by_age_group"],
            vec![
                vec![t("+50"), d(3.0)],
                vec![t("18-24"), d(15.0)],
                vec![t("25-35"), d(2.0)],
            ]
        );
        // q6 counts user rows, including those under 18 and without pins.
        assert_eq!(out["q6_users_joined_by_year"], vec![vec![l(2016), l(9)]]);
        // q7 has no age filter: pairs of all ages, 9 of them.
        // values: 10 20 1 2 100 999 999 3 3 -> sorted 1 2 3 3 10 20 100 999 999 -> 10 (odd 9).
        assert_eq!(
            out["q7_median_followers_by_join_year"],
            vec![vec![l(2016), d(10.0)]]
        );
        assert_eq!(
            out["q8_median_followers_by_age_group_and_join_year"],
            vec![
                vec![t("+50"), l(2016), d(3.0)],
                vec![t("18-24"), l(2016), d(15.0)],
                vec![t("25-35"), l(2016), d(2.0)],
            ]
        );
    }

    #[test]
    fn q6_q7_q8_join_years_2015_to_2020() {
        let pins = [
            pin(1, Some("a"), 1, None),
            pin(2, Some("b"), 4, None),
            pin(3, Some("c"), 7, None),
            pin(4, Some("d"), 1000, None),
            pin(5, Some("e"), 1000, None),
            pin(6, Some("f"), 8, None),
        ];
        let users = [
            user(1, 20, day(2015, 1, 1)),
            user(2, 20, day(2015, 12, 31)),
            user(3, 40, day(2015, 6, 1)),
            user(4, 20, day(2015, 1, 1) - 1), // 2014: out
            user(5, 20, day(2021, 1, 1)),     // 2021: out
            user(6, 16, day(2020, 12, 31)),   // under 18: in q6, q7, not q8
            user(7, 16, day(2020, 1, 1)),     // no pin: q6 only
        ];
        let out = run(&pins, &[], &users);
        assert_eq!(
            out["q6_users_joined_by_year"],
            vec![vec![l(2015), l(3)], vec![l(2020), l(2)]]
        );
        assert_eq!(
            out["q7_median_followers_by_join_year"],
            vec![vec![l(2015), d(4.0)], vec![l(2020), d(8.0)]]
        );
        assert_eq!(
            out["q8_median_followers_by_age_group_and_join_year"],
            vec![
                vec![t("18-24"), l(2015), d(2.5)],
                vec![t("36-50"), l(2015), d(7.0)],
            ]
        );
        // The 2014 and 2021 users still count in q4/q5 (no year filter there).
        assert_eq!(
            out["q5_median_followers_by_age_group"],
            // 18-24 pairs: 1, 4, 1000, 1000 -> (4 + 1000) / 2.
            vec![vec![t("18-24"), d(502.0)], vec![t("36-50"), d(7.0)]]
        );
    }

    #[test]
    fn profile_popularity_top_100_with_ties_at_the_100th() {
        // 98 posters with 1000+i followers, then 5 tied at 500 (places 99..103), then 10 below.
        let mut pins = Vec::new();
        let mut ind = 0;
        let mut next = || {
            ind += 1;
            ind
        };
        for i in 0..98 {
            pins.push(pin(next(), Some(&format!("top{i:02}")), 1000 + i, None));
        }
        for i in 0..5 {
            pins.push(pin(next(), Some(&format!("tie{i}")), 500, None));
        }
        for i in 0..10 {
            pins.push(pin(next(), Some(&format!("low{i}")), 100 + i, None));
        }
        // top00 has two more rows with fewer followers: its max stays 1000, posts 3.
        pins.push(pin(next(), Some("top00"), 1, None));
        pins.push(pin(next(), Some("top00"), 999, None));
        // low0 has a row that lifts it into the tie: max 500.
        pins.push(pin(next(), Some("low0"), 500, None));
        // Null posters never count, however many followers.
        pins.push(pin(next(), None, 1_000_000, None));
        let out = run(&pins, &[], &[]);
        let rows = &out["profile_popularity"];
        assert_eq!(rows.len(), 98 + 6);
        assert!(rows.contains(&vec![t("top00"), l(1000), l(3)]));
        assert!(rows.contains(&vec![t("top97"), l(1097), l(1)]));
        assert!(rows.contains(&vec![t("low0"), l(500), l(2)]));
        for i in 0..5 {
            assert!(rows.contains(&vec![t(&format!("tie{i}")), l(500), l(1)]));
        }
        assert!(rows.iter().all(|r| r[0] != NULL && r[0] != t("low1")));
        let mut sorted = rows.clone();
        sorted.sort();
        assert_eq!(&sorted, rows);

        // Exactly 100 posters with no tie at 100: the 101st is out.
        let pins: Vec<PinRow> = (0..101)
            .map(|i| pin(i, Some(&format!("p{i:03}")), 1000 - i, None))
            .collect();
        let out = run(&pins, &[], &[]);
        assert_eq!(out["profile_popularity"].len(), 100);
        assert!(!out["profile_popularity"].contains(&vec![t("p100"), l(900), l(1)]));
        // Fewer than 100 posters: all of them.
        let pins: Vec<PinRow> = (0..7)
            .map(|i| pin(i, Some(&format!("p{i}")), i, None))
            .collect();
        assert_eq!(run(&pins, &[], &[])["profile_popularity"].len(), 7);
    }

    #[test]
    fn trending_counts_rows_first_seen_in_the_window() {
        let now = 1_000_000_000;
        let window = 300_000_000;
        let pins = [
            (pin(1, Some("a"), 1, Some("art")), now - window), // on the open edge: out
            (pin(2, Some("a"), 1, Some("art")), now - window + 1),
            (pin(3, Some("a"), 1, Some("art")), now),
            (pin(4, Some("a"), 1, None), now - 5),
            (pin(5, Some("a"), 1, Some("food")), now + 1), // in the future: out
            (pin(6, Some("a"), 1, Some("food")), 0),
        ];
        let out = batch(&pins, &[], &[], now, window);
        assert_eq!(
            out["trending_categories"],
            vec![vec![NULL, l(1)], vec![t("art"), l(2)]]
        );
        assert!(batch(&pins, &[], &[], now, 0)["trending_categories"].is_empty());
    }
}

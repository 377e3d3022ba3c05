"""Hand-worked SPEC §3 cases for the reference in spec_reference.py, the tests' one
implementation of the analytics: if it were wrong, every test comparing the engine with it
would agree with a wrong engine. Run by `cargo test --test tests analytics` (see
tests/analytics.rs), or directly:

    python tests/reference/test_spec_reference.py
"""

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from spec_reference import (  # noqa: E402 - after the path is set
    AGGREGATE_COLUMNS,
    age_group,
    aggregates,
    median,
    trending_categories,
    utc_year,
)

NULL = None
DAY = 86_400_000_000


def day(y, m, d):
    """Midnight UTC of the date, in microseconds."""
    delta = dt.datetime(y, m, d, tzinfo=dt.timezone.utc) - dt.datetime(
        1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000


def pin(ind, poster, followers, category, title=None):
    """A clean pin row as the reference holds it (SPEC §2 column order)."""
    return (ind, f"00000000-0000-0000-0000-{ind:012d}", title, None, followers, poster, None,
            None, None, None, category)


def geo(ind, country, timestamp):
    return (ind, country, (0.0, 0.0), timestamp)


def user(ind, age, joined):
    return (ind, f"User {ind}", age, joined)


def run(pins=(), geos=(), users=()):
    return aggregates({"pin": set(pins), "geo": set(geos), "user": set(users)})


class Helpers(unittest.TestCase):
    def test_age_groups(self):
        for age, group in [(0, None), (17, None), (18, "18-24"), (24, "18-24"), (25, "25-35"),
                           (35, "25-35"), (36, "36-50"), (50, "36-50"), (51, "+50"),
                           (150, "+50")]:
            self.assertEqual(age_group(age), group, age)

    def test_exact_medians(self):
        self.assertEqual(median([5]), 5.0)
        self.assertEqual(median([3, 1, 2]), 2.0)
        self.assertEqual(median([4, 1, 3, 2]), 2.5)
        self.assertEqual(median([1, 2]), 1.5)
        self.assertEqual(median([7, 7]), 7.0)
        self.assertEqual(median([2**63 - 1, 2**63 - 1]), float(2**63 - 1))
        self.assertIsInstance(median([3]), float)

    def test_utc_years(self):
        self.assertEqual(utc_year(0), 1970)
        self.assertEqual(utc_year(-1), 1969)
        self.assertEqual(utc_year(day(2018, 1, 1)), 2018)
        self.assertEqual(utc_year(day(2018, 1, 1) - 1), 2017)
        self.assertEqual(utc_year(day(2022, 12, 31) + DAY - 1), 2022)
        self.assertEqual(utc_year(day(2020, 2, 29)), 2020)


class Aggregates(unittest.TestCase):
    def test_every_aggregate_is_present_even_when_empty(self):
        out = run()
        self.assertEqual(set(out), set(AGGREGATE_COLUMNS))
        self.assertTrue(all(rows == [] for rows in out.values()))

    def test_q1_argmax_per_country_with_ties_and_null_values(self):
        pins = [pin(1, "a", 10, "art"), pin(2, "b", 10, "art"), pin(3, "c", 10, "food"),
                pin(4, "d", 10, "food"), pin(5, "e", 10, "diy"), pin(6, "f", 10, None),
                pin(7, "g", 10, "art"), pin(8, "h", 10, None), pin(9, "i", 10, None),
                pin(10, "j", 10, "art")]
        ts = day(2019, 6, 1)
        geos = [
            # X: art 2, food 2, diy 1 -> art and food tie.
            *(geo(i, "X", ts) for i in range(1, 6)),
            # Y: null category 1, art 1 -> a tie including the null category.
            geo(6, "Y", ts), geo(7, "Y", ts),
            # Null country: null category 2 wins over art 1.
            geo(8, None, ts), geo(9, None, ts), geo(10, None, ts),
        ]
        self.assertEqual(run(pins, geos)["q1_popular_category_by_country"], [
            (NULL, NULL, 2), ("X", "art", 2), ("X", "food", 2), ("Y", NULL, 1), ("Y", "art", 1),
        ])

    def test_joins_count_every_pair_and_unmatched_rows_drop_out(self):
        # Two distinct pin rows and two distinct geo rows of ind 1: four pairs.
        pins = [pin(1, "a", 5, "art"), pin(1, "a", 5, "art", title="another title"),
                pin(2, "b", 9, "food")]
        geos = [geo(1, "X", day(2019, 1, 1)), geo(1, "X", day(2020, 1, 1)),
                geo(3, "X", day(2020, 1, 1))]
        out = run(pins, geos)
        self.assertEqual(out["q1_popular_category_by_country"], [("X", "art", 4)])
        self.assertEqual(out["q2_popular_category_by_year"],
                         [(2019, "art", 2), (2020, "art", 2)])
        self.assertEqual(out["q3_top_user_by_country"], [("X", "a", 5)])
        # No user rows: every pin ⋈ user aggregate is empty, q6 too.
        for name in ["q4_popular_category_by_age_group", "q5_median_followers_by_age_group",
                     "q6_users_joined_by_year", "q7_median_followers_by_join_year",
                     "q8_median_followers_by_age_group_and_join_year"]:
            self.assertEqual(out[name], [], name)
        # profile_popularity counts pin rows, not pairs: "a" has two rows.
        self.assertEqual(out["profile_popularity"], [("a", 5, 2), ("b", 9, 1)])

    def test_q2_only_years_2018_to_2022(self):
        pins = [pin(i, "p", 1, "even" if i % 2 == 0 else "odd") for i in range(1, 9)]
        geos = [geo(1, "X", day(2017, 12, 31)), geo(2, "X", day(2018, 1, 1) - 1),
                geo(3, "X", day(2018, 1, 1)), geo(4, "X", day(2018, 7, 1)),
                geo(5, "X", day(2022, 12, 31)), geo(6, "X", day(2023, 1, 1)),
                geo(7, "X", day(2020, 3, 3)), geo(8, "X", day(2020, 3, 4))]
        self.assertEqual(run(pins, geos)["q2_popular_category_by_year"], [
            (2018, "even", 1), (2018, "odd", 1), (2020, "even", 1), (2020, "odd", 1),
            (2022, "odd", 1),
        ])

    def test_q3_and_q3b_ties_and_null_posters(self):
        pins = [
            # X: a 100 and b 100 tie; the null poster with 500 is left out.
            pin(1, "a", 100, "art"), pin(2, "b", 100, "art"), pin(3, None, 500, "art"),
            pin(4, "c", 50, "art"),
            # a again in X with the same count: one row.
            pin(5, "a", 100, "food"),
            # Y: d 100 ties X for the overall max.
            pin(6, "d", 100, None),
            # Z: e 7.
            pin(7, "e", 7, None),
            # W: only null posters -> no q3 row for W.
            pin(8, None, 1000, None),
            # Null country: f 100.
            pin(9, "f", 100, None),
        ]
        ts = day(2019, 1, 1)
        geos = [geo(1, "X", ts), geo(2, "X", ts), geo(3, "X", ts), geo(4, "X", ts),
                geo(5, "X", ts), geo(6, "Y", ts), geo(7, "Z", ts), geo(8, "W", ts),
                geo(9, None, ts)]
        out = run(pins, geos)
        self.assertEqual(out["q3_top_user_by_country"], [
            (NULL, "f", 100), ("X", "a", 100), ("X", "b", 100), ("Y", "d", 100), ("Z", "e", 7),
        ])
        self.assertEqual(out["q3b_top_country"], [(NULL, 100), ("X", 100), ("Y", 100)])
        self.assertEqual(run(pins[:7], geos[:7])["q3b_top_country"], [("X", 100), ("Y", 100)])
        # A single winner.
        out = run([pin(1, "a", 3, None), pin(2, "b", 4, None)], [geo(1, "X", ts), geo(2, "Y", ts)])
        self.assertEqual(out["q3b_top_country"], [("Y", 4)])
        # Only null posters: q3 and q3b empty.
        out = run([pin(1, None, 3, None)], [geo(1, "X", ts)])
        self.assertEqual(out["q3_top_user_by_country"], [])
        self.assertEqual(out["q3b_top_country"], [])

    def test_q4_q5_age_groups_ties_under_18_and_medians(self):
        joined = day(2016, 5, 5)
        pins = [
            # 18-24: art 1, food 1 -> tie; followers 10, 20 -> median 15 (even).
            pin(1, "a", 10, "art"), pin(2, "b", 20, "food"),
            # 25-35: art 2, null 1; followers 1, 2, 100 -> median 2 (odd).
            pin(3, "c", 1, "art"), pin(4, "d", 2, "art"), pin(5, "e", 100, None),
            # Under 18: left out of q4, q5, q8.
            pin(6, "f", 999, "kids"), pin(7, "g", 999, "kids"),
            # +50: one pin, two user rows of ind 8 (ages 60 and 51) -> two pairs.
            pin(8, "h", 3, "travel"),
        ]
        users = [user(1, 18, joined), user(2, 24, joined), user(3, 25, joined),
                 user(4, 35, joined), user(5, 30, joined), user(6, 17, joined),
                 user(7, 0, joined), user(8, 60, joined), user(8, 51, joined)]
        out = run(pins, users=users)
        self.assertEqual(out["q4_popular_category_by_age_group"], [
            ("+50", "travel", 2), ("18-24", "art", 1), ("18-24", "food", 1), ("25-35", "art", 2),
        ])
        self.assertEqual(out["q5_median_followers_by_age_group"],
                         [("+50", 3.0), ("18-24", 15.0), ("25-35", 2.0)])
        # q6 counts user rows, including those under 18 and without pins.
        self.assertEqual(out["q6_users_joined_by_year"], [(2016, 9)])
        # q7 has no age filter: pairs of all ages, 9 of them:
        # 1 2 3 3 10 20 100 999 999 -> 10.
        self.assertEqual(out["q7_median_followers_by_join_year"], [(2016, 10.0)])
        self.assertEqual(out["q8_median_followers_by_age_group_and_join_year"], [
            ("+50", 2016, 3.0), ("18-24", 2016, 15.0), ("25-35", 2016, 2.0),
        ])

    def test_q6_q7_q8_join_years_2015_to_2020(self):
        pins = [pin(1, "a", 1, None), pin(2, "b", 4, None), pin(3, "c", 7, None),
                pin(4, "d", 1000, None), pin(5, "e", 1000, None), pin(6, "f", 8, None)]
        users = [
            user(1, 20, day(2015, 1, 1)),
            user(2, 20, day(2015, 12, 31)),
            user(3, 40, day(2015, 6, 1)),
            user(4, 20, day(2015, 1, 1) - 1),  # 2014: out
            user(5, 20, day(2021, 1, 1)),  # 2021: out
            user(6, 16, day(2020, 12, 31)),  # under 18: in q6, q7, not q8
            user(7, 16, day(2020, 1, 1)),  # no pin: q6 only
        ]
        out = run(pins, users=users)
        self.assertEqual(out["q6_users_joined_by_year"], [(2015, 3), (2020, 2)])
        self.assertEqual(out["q7_median_followers_by_join_year"], [(2015, 4.0), (2020, 8.0)])
        self.assertEqual(out["q8_median_followers_by_age_group_and_join_year"],
                         [("18-24", 2015, 2.5), ("36-50", 2015, 7.0)])
        # The 2014 and 2021 users still count in q4/q5 (no year filter there):
        # 18-24 pairs 1, 4, 1000, 1000 -> (4 + 1000) / 2.
        self.assertEqual(out["q5_median_followers_by_age_group"],
                         [("18-24", 502.0), ("36-50", 7.0)])

    def test_profile_popularity_top_100_with_ties_at_the_100th(self):
        # 98 posters with 1000+i followers, then 5 tied at 500 (places 99..103), then 10 below.
        specs = [(f"top{i:02d}", 1000 + i) for i in range(98)]
        specs += [(f"tie{i}", 500) for i in range(5)]
        specs += [(f"low{i}", 100 + i) for i in range(10)]
        # top00 has two more rows with fewer followers: its max stays 1000, posts 3.
        specs += [("top00", 1), ("top00", 999)]
        # low0 has a row that lifts it into the tie: max 500.
        specs += [("low0", 500)]
        # Null posters never count, however many followers.
        specs += [(None, 1_000_000)]
        pins = [pin(i + 1, poster, n, None) for i, (poster, n) in enumerate(specs)]
        rows = run(pins)["profile_popularity"]
        self.assertEqual(len(rows), 98 + 6)
        for row in [("top00", 1000, 3), ("top97", 1097, 1), ("low0", 500, 2),
                    *((f"tie{i}", 500, 1) for i in range(5))]:
            self.assertIn(row, rows)
        self.assertTrue(all(r[0] is not None and r[0] != "low1" for r in rows))

        # Exactly 101 posters and no tie at the 100th: the 101st is out.
        pins = [pin(i, f"p{i:03d}", 1000 - i, None) for i in range(101)]
        rows = run(pins)["profile_popularity"]
        self.assertEqual(len(rows), 100)
        self.assertNotIn(("p100", 900, 1), rows)
        # Fewer than 100 posters: all of them.
        pins = [pin(i, f"p{i}", i, None) for i in range(7)]
        self.assertEqual(len(run(pins)["profile_popularity"]), 7)

    def test_trending_counts_rows_first_seen_in_the_window(self):
        now, window = 1_000_000_000, 300_000_000
        arrivals = {
            pin(1, "a", 1, "art"): now - window,  # on the open edge: out
            pin(2, "a", 1, "art"): now - window + 1,
            pin(3, "a", 1, "art"): now,
            pin(4, "a", 1, None): now - 5,
            pin(5, "a", 1, "food"): now + 1,  # in the future: out
            pin(6, "a", 1, "food"): 0,
        }
        self.assertEqual(trending_categories(arrivals, now, window), [(NULL, 1), ("art", 2)])
        self.assertEqual(trending_categories(arrivals, now, 0), [])


class Expected(unittest.TestCase):
    """`--expected`: the JSON the property tests read, computed from raw input files."""

    def test_expected_mode_cleans_the_files_and_prints_typed_json(self):
        pin_line = ('{{"index": {ind}, "unique_id": "55abcd28-bda1-4453-bbcd-1427fb3aa49b", '
                    '"title": "t", "description": "d", "poster_name": {poster}, '
                    '"follower_count": {followers}, "tag_list": "a", "is_image_or_video": "image",'
                    ' "image_src": "x", "downloaded": 1, "save_location": "Local save in /x", '
                    '"category": {category}}}')
        pins = [pin_line.format(ind=1, poster='"Ann"', followers='"3k"', category='"art"'),
                pin_line.format(ind=1, poster='"Ann"', followers='"3k"', category='"art"'),
                pin_line.format(ind=2, poster='"User Info Error"', followers="7",
                                category='""'),
                "{not json"]
        users = ['{"ind": 1, "first_name": "A", "last_name": "B", "age": 20, '
                 '"date_joined": "2016-02-03 04:05:06"}',
                 '{"ind": 2, "first_name": "A", "last_name": "B", "age": 40, '
                 '"date_joined": "2016-02-03 04:05:06"}']
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "pin-0.jsonl"), "w") as handle:
                handle.write("\n".join(pins) + "\n")
            with open(os.path.join(folder, "user-0.jsonl"), "w") as handle:
                handle.write("\n".join(users) + "\n")
            script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spec_reference.py")
            plain = json.loads(subprocess.run([sys.executable, script, "--expected", folder],
                                              check=True, capture_output=True).stdout)
            seen = json.loads(subprocess.run(
                [sys.executable, script, "--expected", folder, "--all-seen-in-window"],
                check=True, capture_output=True).stdout)
        self.assertEqual(set(plain), set(AGGREGATE_COLUMNS))
        self.assertEqual(set(seen), set(AGGREGATE_COLUMNS) | {"trending_categories"})
        self.assertEqual(plain["q7_median_followers_by_join_year"], [[2016, 1503.5]])
        self.assertEqual(plain["q5_median_followers_by_age_group"],
                         [["18-24", 3000.0], ["36-50", 7.0]])
        self.assertIsInstance(plain["q5_median_followers_by_age_group"][1][1], float)
        self.assertEqual(plain["q6_users_joined_by_year"], [[2016, 2]])
        self.assertEqual(plain["profile_popularity"], [["Ann", 3000, 1]])
        self.assertEqual(seen["trending_categories"], [[None, 1], ["art", 1]])


if __name__ == "__main__":
    unittest.main()

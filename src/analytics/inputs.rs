//! The collections the queries read, built once from the facts: each table's part, the joins
//! on `ind`, and the intermediates more than one query reads.
//!
//! Every query is incremental: the joins on `ind` and the per-key reductions
//! ([`super::operators`]) keep state per key, so a new row costs work in proportion to the
//! keys it touches, not to the tables. Results depend only on the set of rows, never on
//! arrival order, batching or the worker count. Memory grows with distinct data, not with the
//! number of batches.

use serde::{Deserialize, Serialize};

use super::Collection;
use super::facts::{Fact, age_group};
use super::names::Name;
use super::operators::join;

/// A pin row's part the queries read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pin {
    pub category: Name,
    pub poster_name: Name,
    pub follower_count: i64,
}

/// A user row's part the queries read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct User {
    pub age: i32,
    pub join_year: i32,
}

/// A pin and a geo row with the same `ind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PinGeo {
    pub category: Name,
    pub poster_name: Name,
    pub follower_count: i64,
    pub country: Name,
    /// The UTC year of the geo row's timestamp.
    pub year: i32,
}

/// A pin and a user row with the same `ind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PinUser {
    pub category: Name,
    pub follower_count: i64,
    /// `None` under 18.
    pub age_group: Option<u8>,
    pub join_year: i32,
}

/// What the queries are built from. Cloning a collection here is cheap (a handle); each query
/// takes the ones it reads.
pub struct Inputs<'scope> {
    /// Pin rows by `ind`.
    pub pins: Collection<'scope, (i64, Pin)>,
    /// User rows by `ind`.
    pub users: Collection<'scope, (i64, User)>,
    /// pin ⋈ geo on `ind`.
    pub pin_geo: Collection<'scope, PinGeo>,
    /// pin ⋈ user on `ind`.
    pub pin_user: Collection<'scope, PinUser>,
    /// Per country, the posters with the highest follower_count (q3's rows, which q3b ranks
    /// again): built once here so the two queries share the reduction.
    pub top_users_by_country: Collection<'scope, (Name, (i64, Name))>,
}

impl<'scope> Inputs<'scope> {
    pub fn new(facts: Collection<'scope, Fact>) -> Inputs<'scope> {
        let pins = facts.clone().flat_map(|fact| match fact {
            Fact::Pin {
                ind,
                category,
                poster_name,
                follower_count,
            } => Some((
                ind,
                Pin {
                    category,
                    poster_name,
                    follower_count,
                },
            )),
            _ => None,
        });
        let geos = facts.clone().flat_map(|fact| match fact {
            Fact::Geo { ind, country, year } => Some((ind, (country, year))),
            _ => None,
        });
        let users = facts.flat_map(|fact| match fact {
            Fact::User {
                ind,
                age,
                join_year,
            } => Some((ind, User { age, join_year })),
            _ => None,
        });

        // pin ⋈ geo and pin ⋈ user on ind.
        let pin_geo = join(
            pins.clone(),
            geos,
            "pin_geo",
            |_ind, pin: &Pin, &(country, year)| PinGeo {
                category: pin.category,
                poster_name: pin.poster_name,
                follower_count: pin.follower_count,
                country,
                year,
            },
        );
        let pin_user = join(
            pins.clone(),
            users.clone(),
            "pin_user",
            |_ind, pin: &Pin, user: &User| PinUser {
                category: pin.category,
                follower_count: pin.follower_count,
                age_group: age_group(user.age),
                join_year: user.join_year,
            },
        );
        let top_users_by_country =
            super::q3_top_user_by_country::top_users_by_country(pin_geo.clone());
        Inputs {
            pins,
            users,
            pin_geo,
            pin_user,
            top_users_by_country,
        }
    }
}

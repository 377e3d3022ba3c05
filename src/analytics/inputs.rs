//! The collections the queries read, built once from the facts: the facts themselves, the
//! joins on `ind`, and the intermediates more than one query reads.
//!
//! Every query is incremental: the joins on `ind` and the per-key reductions
//! ([`super::operators`]) keep state per key, so a new row costs work in proportion to the
//! keys it touches, not to the tables. Results depend only on the set of rows, never on
//! arrival order, batching or the worker count. Memory grows with distinct data, not with the
//! number of batches.

use std::collections::BTreeMap;

use differential_dataflow::{AsCollection, Hashable};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;

use super::Collection;
use super::facts::{Fact, age_group};
use super::names::Name;
use super::operators::{insert_only, take_done};
use crate::grow::{ChunkedVec, GrowingMap};

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
    /// A fact of every clean row, for the queries that read one table (each projects what
    /// it reads in the operator that prepares its reduction's input).
    pub facts: Collection<'scope, Fact>,
    /// pin ⋈ geo on `ind`.
    pub pin_geo: Collection<'scope, PinGeo>,
    /// pin ⋈ user on `ind`.
    pub pin_user: Collection<'scope, PinUser>,
    /// Per country, the posters with the highest follower_count (q3's rows, which q3b ranks
    /// again): built once here so the two queries share the reduction.
    pub top_users_by_country: Collection<'scope, (Name, (i64, Name))>,
}

impl<'scope> Inputs<'scope> {
    /// `held_posts`: the posts the tables hold, per worker (sizes the join's state once).
    pub fn new(facts: Collection<'scope, Fact>, held_posts: usize) -> Inputs<'scope> {
        let (pin_geo, pin_user) = join_on_ind(facts.clone(), held_posts);
        let top_users_by_country =
            super::q3_top_user_by_country::top_users_by_country(pin_geo.clone());
        Inputs {
            facts,
            pin_geo,
            pin_user,
            top_users_by_country,
        }
    }
}

/// pin ⋈ geo and pin ⋈ user on `ind`, in one operator over the facts.
///
/// The facts are exchanged by `ind`; each worker keeps, per `ind` it owns, the pin, geo and
/// user facts seen (one of each, mostly), and applies them in time order: a pin meets the geos
/// and users held, a geo or a user the pins held, so each pair is given once, at the later of
/// its two facts' times. The facts only grow (each distinct row once; a restart starts over
/// from the tables), so nothing is ever taken out.
///
/// A time's facts are applied as soon as no earlier time can come (the frontier is at it), as
/// they arrive, not held until the frontier has passed it: the order of the facts within a
/// time changes no pair. A restart sends every row the tables hold at one time, and holding
/// them all (the facts of 1.5M rows per worker, in a vector grown by doubling) was the largest
/// buffer of the restart.
///
/// Two differential `join_core`s over three arrangements computed the same collections; on
/// rows that are one or two per key and never retracted, keeping those arrangements sorted
/// and merged was most of their cost (9% of all instructions). The facts of a post sit
/// together in one slot of a dense vector (the hash map holds only its index), so memory
/// stays near what the arrangements held.
fn join_on_ind<'scope>(
    facts: Collection<'scope, Fact>,
    held_posts: usize,
) -> (Collection<'scope, PinGeo>, Collection<'scope, PinUser>) {
    let mut builder = OperatorBuilder::new("pin_geo_user".to_owned(), facts.scope());
    let mut input = builder.new_input(
        facts.inner,
        Exchange::new(|(fact, _, _): &(Fact, u64, isize)| fact.ind().hashed()),
    );
    let (geo_out, pin_geo) = builder.new_output::<Vec<(PinGeo, u64, isize)>>();
    let (user_out, pin_user) = builder.new_output::<Vec<(PinUser, u64, isize)>>();
    let mut geo_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<(PinGeo, u64, isize)>>>::from(geo_out);
    let mut user_out =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<(PinUser, u64, isize)>>>::from(user_out);
    builder.build(move |_capabilities| {
        let mut slots: GrowingMap<i64, u32> =
            GrowingMap::with_capacity_and_hasher(held_posts, Default::default());
        let mut posts: ChunkedVec<Post> = ChunkedVec::default();
        // Facts of times ahead of the frontier (and those that came this activation), with a
        // capability per output.
        let mut pending: BTreeMap<u64, PendingFacts> = BTreeMap::new();
        move |frontiers| {
            input.for_each_stamp(|capability, batches| {
                for (fact, time, diff) in batches.flat_map(|b| b.drain(..)) {
                    if !insert_only("pin_geo_user", diff) {
                        continue;
                    }
                    pending
                        .entry(time)
                        .or_insert_with(|| {
                            let at = |port| capability.delayed(&time, port);
                            (at(0), at(1), Vec::new())
                        })
                        .2
                        .extend(std::iter::repeat_n(fact, diff.unsigned_abs()));
                }
            });
            let (mut geo_out, mut user_out) = (geo_out.activate(), user_out.activate());
            for (geo_at, user_at, facts) in
                take_done(&mut pending, |time| !frontiers[0].less_than(time))
            {
                let time = *geo_at.time();
                let mut geos = geo_out.session(&geo_at);
                let mut users = user_out.session(&user_at);
                for fact in facts {
                    let slot = *slots
                        .entry(fact.ind())
                        .or_insert_with(|| posts.push(Post::default()) as u32);
                    let post = &mut posts[slot as usize];
                    match fact {
                        Fact::Pin {
                            category,
                            poster_name,
                            follower_count,
                            ..
                        } => {
                            let pin = Pin {
                                category,
                                poster_name,
                                follower_count,
                            };
                            for &(country, year) in &post.geos {
                                geos.give((pin_geo_pair(&pin, country, year), time, 1));
                            }
                            for user in &post.users {
                                users.give((pin_user_pair(&pin, user), time, 1));
                            }
                            post.pins.push(pin);
                        }
                        Fact::Geo { country, year, .. } => {
                            for pin in &post.pins {
                                geos.give((pin_geo_pair(pin, country, year), time, 1));
                            }
                            post.geos.push((country, year));
                        }
                        Fact::User { age, join_year, .. } => {
                            let user = User { age, join_year };
                            for pin in &post.pins {
                                users.give((pin_user_pair(pin, &user), time, 1));
                            }
                            post.users.push(user);
                        }
                    }
                }
            }
        }
    });
    (pin_geo.as_collection(), pin_user.as_collection())
}

/// The facts of one post (one `ind`) that [`join_on_ind`] holds.
#[derive(Default)]
struct Post {
    pins: SmallVec<[Pin; 1]>,
    /// Country and year.
    geos: SmallVec<[(Name, i32); 1]>,
    users: SmallVec<[User; 1]>,
}

/// A time's facts, with a capability for each output, until the frontier passes the time.
type PendingFacts = (Capability<u64>, Capability<u64>, Vec<Fact>);

fn pin_geo_pair(pin: &Pin, country: Name, year: i32) -> PinGeo {
    PinGeo {
        category: pin.category,
        poster_name: pin.poster_name,
        follower_count: pin.follower_count,
        country,
        year,
    }
}

fn pin_user_pair(pin: &Pin, user: &User) -> PinUser {
    PinUser {
        category: pin.category,
        follower_count: pin.follower_count,
        age_group: age_group(user.age),
        join_year: user.join_year,
    }
}

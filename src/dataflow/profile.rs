//! Where a worker's time goes, by operator: the time each dataflow operator spent scheduled,
//! summed from timely's own `Schedule` log events and logged when the worker ends.
//!
//! Off unless `pinstream::dataflow::profile=debug` is in the log filter (timely then logs an
//! event on every operator start and stop, which costs a little). Profilers see functions;
//! this sees the graph's stages (`dedup`, `route`, each `reduce`, ...), which is what a change
//! to the dataflow moves.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use timely::logging::{StartStop, TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

/// One operator's name, path depth and time scheduled.
#[derive(Default)]
struct Operator {
    name: String,
    depth: usize,
    started: Option<Duration>,
    busy: Duration,
    calls: u64,
}

/// The operators of one worker, by timely's operator id.
#[derive(Clone, Default)]
pub struct OperatorTimes(Rc<RefCell<HashMap<usize, Operator>>>);

impl OperatorTimes {
    /// Starts recording `worker`'s operators when the profile is asked for (before the dataflow
    /// is built: operators are named when they are made).
    pub fn register(worker: &mut Worker) -> Option<OperatorTimes> {
        if !tracing::enabled!(target: "pinstream::dataflow::profile", tracing::Level::DEBUG) {
            return None;
        }
        let times = OperatorTimes::default();
        let operators = times.0.clone();
        worker.log_register()?.insert::<TimelyEventBuilder, _>(
            "timely",
            move |_, events: &mut Option<Vec<(Duration, TimelyEvent)>>| {
                let mut operators = operators.borrow_mut();
                for (at, event) in events.iter().flatten() {
                    match event {
                        TimelyEvent::Operates(made) => {
                            let operator = operators.entry(made.id).or_default();
                            operator.name = made.name.clone();
                            operator.depth = made.addr.len();
                        }
                        TimelyEvent::Schedule(scheduled) => {
                            let operator = operators.entry(scheduled.id).or_default();
                            match scheduled.start_stop {
                                StartStop::Start => operator.started = Some(*at),
                                StartStop::Stop => {
                                    if let Some(started) = operator.started.take() {
                                        operator.busy += at.saturating_sub(started);
                                        operator.calls += 1;
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
            },
        );
        Some(times)
    }

    /// Logs the operators' times, busiest first (operators of the dataflow, not its scopes).
    pub fn log(&self, worker: usize) {
        let operators = self.0.borrow();
        let mut busiest: Vec<&Operator> = operators
            .values()
            .filter(|operator| operator.depth > 1 && operator.busy > Duration::ZERO)
            .collect();
        busiest.sort_by_key(|operator| std::cmp::Reverse(operator.busy));
        let total: Duration = busiest.iter().map(|operator| operator.busy).sum();
        for operator in busiest.iter().take(40) {
            tracing::debug!(
                target: "pinstream::dataflow::profile",
                worker,
                operator = %operator.name,
                busy_ms = operator.busy.as_secs_f64() * 1e3,
                share = format_args!("{:.1}%", 100.0 * operator.busy.as_secs_f64() / total.as_secs_f64().max(1e-9)),
                calls = operator.calls,
                "operator time"
            );
        }
    }
}

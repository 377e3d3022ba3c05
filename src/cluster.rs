//! One job over several processes: a timely cluster.
//!
//! Every process runs the same job with the same worker count; timely connects them into one
//! set of `processes × workers` workers, so the dataflow's exchanges (deduplication by row
//! identity, the analytics' arrangements, the single committer) span the whole cluster and the
//! outputs do not depend on how many processes there are.
//!
//! Before timely connects, the processes meet at process 0 ([`rendezvous`]): each says which
//! job it runs and with how many workers, so a mismatch is one clear line instead of a hang
//! (timely itself would wait forever, or route to workers that do not exist), and a process
//! that does not come is named after a timeout.
//!
//! Once running, a process that dies (SIGKILL) breaks its TCP connections; timely's
//! communication threads then panic. [`exit_on_lost_peer`] turns that into one line naming the
//! lost process and a non-zero exit, so every survivor stops within seconds and a supervisor
//! restarts the cluster, which resumes from the positions in the tables. A host that is lost
//! without closing its connections (powered off, cut off, frozen) is noticed by the
//! [`Heartbeats`] process 0 and every other process exchange over their rendezvous connection:
//! none for [`LOST_AFTER`] ends the process that misses them, and the others follow as their
//! connections to it break.
//!
//! The first loss is the one named. A process that ends because it lost another first tells
//! the processes it exchanges heartbeats with which one ([`Losses`]), and a process that sees
//! a peer go waits a moment for that word: with three processes and the second killed, the
//! first used to name the third, whose connection happened to break first.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use serde::{Deserialize, Serialize};
use timely::communication::logging::{CommunicationEvent, CommunicationSetup};
use timely::communication::networking::MessageHeader;
use timely::logging_core::Logger;

/// Exit status of a process that lost a peer (distinct from 1, a failed job, so that a
/// supervisor can tell "restart the cluster" from "fix the job").
pub const EXIT_LOST_PEER: i32 = 3;

/// How long process 0 waits for the others, and they for it, by default.
pub const DEFAULT_JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a waiting process says what it waits for.
const WAIT_REPORT_EVERY: Duration = Duration::from_secs(10);

/// How often a heartbeat is sent, and how long without one means the other process is lost.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
pub const LOST_AFTER: Duration = Duration::from_secs(10);

/// How long a process that sees a peer go waits for that peer's word of an earlier loss.
const LOSS_WORD_WAIT: Duration = Duration::from_millis(300);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("hosts file {path}: {reason}")]
    HostsFile { path: String, reason: String },
    #[error("cluster: {0}")]
    Invalid(String),
    #[error("cluster: process {process} is not in the hosts list (it has {processes} lines: 0..{})", processes - 1)]
    ProcessOutOfRange { process: usize, processes: usize },
    #[error(
        "cluster: cannot listen on {address} (process {process}'s line of the hosts list): {source}"
    )]
    Listen {
        process: usize,
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster: {missing} did not join within {waited:?}")]
    Missing { missing: String, waited: Duration },
    #[error("cluster: process 0 ({address}) refused process {process}: {reason}")]
    Refused {
        process: usize,
        address: String,
        reason: String,
    },
    #[error("cluster: {0}")]
    Mismatch(String),
}

/// Where this process stands in a cluster: the address of every process (timely's hosts
/// list, one `host:port` each, in process order) and its own index.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    pub hosts: Vec<String>,
    pub process: usize,
    pub join_timeout: Duration,
}

impl Cluster {
    /// Checks the hosts and the index.
    pub fn new(
        hosts: Vec<String>,
        process: usize,
        join_timeout: Duration,
    ) -> Result<Cluster, ClusterError> {
        if hosts.is_empty() {
            return Err(ClusterError::Invalid("the hosts list is empty".into()));
        }
        for (index, host) in hosts.iter().enumerate() {
            if host.to_socket_addrs().is_err() {
                return Err(ClusterError::Invalid(format!(
                    "host {index} `{host}` is not host:port"
                )));
            }
            if hosts[..index].contains(host) {
                return Err(ClusterError::Invalid(format!(
                    "host `{host}` is listed twice"
                )));
            }
        }
        if process >= hosts.len() {
            return Err(ClusterError::ProcessOutOfRange {
                process,
                processes: hosts.len(),
            });
        }
        Ok(Cluster {
            hosts,
            process,
            join_timeout,
        })
    }

    /// Reads a hosts file: one `host:port` per line; blank lines and `#` comments are skipped.
    pub fn read_hosts(path: &Path) -> Result<Vec<String>, ClusterError> {
        let error = |reason: String| ClusterError::HostsFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let hosts: Vec<String> = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default().trim())
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        if hosts.is_empty() {
            return Err(error("no host:port lines".into()));
        }
        Ok(hosts)
    }

    pub fn processes(&self) -> usize {
        self.hosts.len()
    }

    /// Connects to every other process (timely's TCP mesh) for `workers` threads here, and
    /// counts in `sent` the bytes this process sends them (timely's messages and headers):
    /// what crossing processes costs.
    pub fn connect(&self, workers: usize, sent: Arc<AtomicU64>) -> Result<Connected, String> {
        let communication = timely::CommunicationConfig::Cluster {
            threads: workers,
            process: self.process,
            addresses: self.hosts.clone(),
            report: false,
            zerocopy: false,
        };
        let log_fn = Arc::new(move |setup: CommunicationSetup| {
            if !setup.sender {
                return None;
            }
            let sent = sent.clone();
            let header = std::mem::size_of::<MessageHeader>() as u64;
            Some(Logger::new(
                Instant::now(),
                Duration::ZERO,
                move |_, events: &mut Option<Vec<(Duration, CommunicationEvent)>>| {
                    for (_, event) in events.iter().flatten() {
                        if let CommunicationEvent::Message(message) = event
                            && message.is_send
                        {
                            sent.fetch_add(
                                message.header.length as u64 + header,
                                Ordering::Relaxed,
                            );
                        }
                    }
                },
            ))
        });
        communication.try_build_with(timely::communication::Hooks {
            log_fn,
            ..Default::default()
        })
    }
}

/// Timely's allocators for this process's workers, connected to the other processes.
pub type Connected = (
    Vec<timely::communication::AllocatorBuilder>,
    Box<dyn std::any::Any + Send>,
);

/// What a process tells process 0 when it joins.
#[derive(Debug, Serialize, Deserialize)]
struct Hello {
    process: usize,
    workers: usize,
    /// A digest of everything that must be equal on every process (see [`rendezvous`]).
    job: String,
}

/// Process 0's answer.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    refused: Option<String>,
}

/// Waits until every process of the cluster is there and runs the same job (`job`, a digest
/// of the settings that must agree) with the same number of workers, or fails naming the
/// missing or mismatched process. Process 0 listens on its own address (which timely binds
/// next); the others connect to it, retrying until the join timeout.
///
/// The connections stay open as [`Heartbeats`]: process 0 with every other process.
pub fn rendezvous(
    cluster: &Cluster,
    workers: usize,
    job: &str,
    losses: &Losses,
) -> Result<Heartbeats, ClusterError> {
    if cluster.processes() == 1 {
        return Ok(Heartbeats::default());
    }
    let hello = Hello {
        process: cluster.process,
        workers,
        job: job.to_owned(),
    };
    if cluster.process == 0 {
        gather(cluster, &hello, losses)
    } else {
        join(cluster, &hello, losses)
    }
}

/// Process 0: accepts one hello from every other process, checks them all, then answers each.
fn gather(cluster: &Cluster, own: &Hello, losses: &Losses) -> Result<Heartbeats, ClusterError> {
    let address = &cluster.hosts[0];
    let listener = TcpListener::bind(address).map_err(|source| ClusterError::Listen {
        process: 0,
        address: address.clone(),
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ClusterError::Listen {
            process: 0,
            address: address.clone(),
            source,
        })?;
    let started = Instant::now();
    let mut reported = Instant::now();
    let mut joined: Vec<Option<(Hello, TcpStream)>> =
        (0..cluster.processes()).map(|_| None).collect();
    while joined.iter().skip(1).any(Option::is_none) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Some(hello) = read_hello(&stream) {
                    let slot = hello.process;
                    if slot == 0 || slot >= joined.len() {
                        answer(&stream, Some(format!("no process {slot} in this cluster")));
                    } else {
                        joined[slot] = Some((hello, stream));
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                let missing = missing(cluster, &joined);
                if started.elapsed() > cluster.join_timeout {
                    for (_, stream) in joined.iter().flatten() {
                        answer(stream, Some(format!("{missing} did not join")));
                    }
                    return Err(ClusterError::Missing {
                        missing,
                        waited: cluster.join_timeout,
                    });
                }
                if reported.elapsed() > WAIT_REPORT_EVERY {
                    tracing::info!("cluster: waiting for {missing}");
                    reported = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => {
                return Err(ClusterError::Listen {
                    process: 0,
                    address: address.clone(),
                    source: error,
                });
            }
        }
    }
    let mismatch = joined
        .iter()
        .flatten()
        .find_map(|(hello, _)| mismatch(own, hello));
    for (_, stream) in joined.iter().flatten() {
        answer(stream, mismatch.clone());
    }
    match mismatch {
        Some(reason) => Err(ClusterError::Mismatch(reason)),
        None => {
            tracing::info!(
                processes = cluster.processes(),
                "cluster: every process joined"
            );
            let peers = joined
                .into_iter()
                .enumerate()
                .filter_map(|(process, slot)| slot.map(|(_, stream)| (process, stream)))
                .collect();
            Ok(Heartbeats::watch(peers, &cluster.hosts, losses))
        }
    }
}

/// Why `other` cannot run with `own`, if it cannot.
fn mismatch(own: &Hello, other: &Hello) -> Option<String> {
    if other.workers != own.workers {
        return Some(format!(
            "process {} runs {} workers, process 0 runs {}: every process needs the same --workers",
            other.process, other.workers, own.workers
        ));
    }
    if other.job != own.job {
        return Some(format!(
            "process {} runs another job than process 0 (its lake, sources, batch or analytics settings differ)",
            other.process
        ));
    }
    None
}

/// The processes not joined yet, named with their addresses.
fn missing(cluster: &Cluster, joined: &[Option<(Hello, TcpStream)>]) -> String {
    let names: Vec<String> = joined
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, slot)| slot.is_none())
        .map(|(process, _)| format!("process {process} ({})", cluster.hosts[process]))
        .collect();
    names.join(", ")
}

fn read_hello(stream: &TcpStream) -> Option<Hello> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

fn answer(mut stream: &TcpStream, refused: Option<String>) {
    let mut line = serde_json::to_string(&Answer { refused }).unwrap_or_default();
    line.push('\n');
    // A peer that went away meanwhile finds out when timely connects.
    let _ = stream.write_all(line.as_bytes());
}

/// Any other process: says hello to process 0 (retrying until the join timeout) and waits for
/// its answer, which comes once every process has joined.
fn join(cluster: &Cluster, hello: &Hello, losses: &Losses) -> Result<Heartbeats, ClusterError> {
    let address = &cluster.hosts[0];
    let started = Instant::now();
    let mut reported = Instant::now();
    let stream = loop {
        match TcpStream::connect(address) {
            Ok(stream) => break stream,
            Err(_) if started.elapsed() < cluster.join_timeout => {
                if reported.elapsed() > WAIT_REPORT_EVERY {
                    tracing::info!("cluster: waiting for process 0 ({address})");
                    reported = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(_) => {
                return Err(ClusterError::Missing {
                    missing: format!("process 0 ({address})"),
                    waited: cluster.join_timeout,
                });
            }
        }
    };
    let refused = |reason: String| ClusterError::Refused {
        process: cluster.process,
        address: address.clone(),
        reason,
    };
    let mut line = serde_json::to_string(hello).map_err(|e| refused(e.to_string()))?;
    line.push('\n');
    (&stream)
        .write_all(line.as_bytes())
        .map_err(|e| refused(e.to_string()))?;
    // Process 0 answers when the last process joined, or when its own timeout ran out.
    stream
        .set_read_timeout(Some(cluster.join_timeout + Duration::from_secs(5)))
        .map_err(|e| refused(e.to_string()))?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| refused(format!("no answer: {e}")))?;
    let answer: Answer = serde_json::from_str(&line)
        .map_err(|_| refused("no answer (it stopped, or is not a pinstream process)".into()))?;
    match answer.refused {
        Some(reason) => Err(ClusterError::Mismatch(reason)),
        None => Ok(Heartbeats::watch(vec![(0, stream)], &cluster.hosts, losses)),
    }
}

/// What a heartbeat connection carries: a beat every [`HEARTBEAT_EVERY`], then a goodbye when
/// the process ends its part of the job well (its end is then no loss), or, when it ends
/// because it lost a process, `LOST` and that process's index (4 bytes, big-endian).
const BEAT: u8 = b'.';
const GOODBYE: u8 = b'!';
const LOST: u8 = b'x';

/// This process's ties to the other processes of a cluster, for the whole run: the heartbeats
/// of the last rendezvous, and what is known of lost processes.
#[derive(Default)]
pub struct Peers {
    pub heartbeats: Option<Heartbeats>,
    pub losses: Losses,
}

/// What a process knows of lost processes, shared by timely's threads (through the panic
/// hook) and the heartbeat threads: the heartbeat connections (to say goodbye on, or to tell
/// of a loss), what peers told of theirs, and whether this process is already ending.
#[derive(Clone, Debug, Default)]
pub struct Losses(Arc<LossesInner>);

#[derive(Debug, Default)]
struct LossesInner {
    /// The heartbeat connections (the current rendezvous's).
    connections: Mutex<Vec<TcpStream>>,
    /// The first word of a loss a peer sent: (that peer, the process it lost).
    told: Mutex<Option<(usize, usize)>>,
    ending: AtomicBool,
}

impl Losses {
    /// The first loss behind `peer`'s end: the process a peer said it lost (`peer` itself, or
    /// process 0 passing on what another told it: the heartbeats link every process to process
    /// 0 only), waiting a moment for that word; `peer` itself when none came.
    fn first_behind(&self, peer: usize) -> (usize, Option<usize>) {
        let waited = Instant::now();
        loop {
            if let Some((by, lost)) = *self.0.told.lock() {
                return (lost, Some(by));
            }
            if waited.elapsed() >= LOSS_WORD_WAIT {
                return (peer, None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Tells every heartbeat peer that this process ends because it lost `lost`.
    fn tell(&self, lost: usize) {
        let mut word = vec![LOST];
        word.extend_from_slice(&(lost as u32).to_be_bytes());
        self.send(&word);
    }

    /// Writes `word` on every heartbeat connection (best effort: a broken one is a loss its
    /// watcher reports).
    fn send(&self, word: &[u8]) {
        for mut stream in self.0.connections.lock().iter() {
            let _ = stream.write_all(word);
        }
    }
}

/// The heartbeats this process exchanges with the others it met at the rendezvous (process 0:
/// every other process; the others: process 0). A missing beat for [`LOST_AFTER`], or a
/// connection closed without a goodbye, ends this process with one line naming the lost one.
#[derive(Debug, Default)]
pub struct Heartbeats {
    /// Holds the connections.
    losses: Losses,
    done: Arc<AtomicBool>,
}

impl Heartbeats {
    /// Starts a sender and a watcher thread per connection.
    fn watch(peers: Vec<(usize, TcpStream)>, hosts: &[String], losses: &Losses) -> Heartbeats {
        let done = Arc::new(AtomicBool::new(false));
        let mut kept = Vec::new();
        for (peer, stream) in peers {
            let (Ok(reader), Ok(writer)) = (stream.try_clone(), stream.try_clone()) else {
                continue;
            };
            let (hosts, losses) = (hosts.to_vec(), losses.clone());
            let stopped = done.clone();
            let _ = std::thread::Builder::new()
                .name(format!("pinstream-beat-{peer}"))
                .spawn(move || send_beats(writer, &stopped));
            let stopped = done.clone();
            let _ = std::thread::Builder::new()
                .name(format!("pinstream-watch-{peer}"))
                .spawn(move || watch_beats(reader, peer, &hosts, &losses, &stopped));
            kept.push(stream);
        }
        *losses.0.connections.lock() = kept;
        Heartbeats {
            losses: losses.clone(),
            done,
        }
    }

    /// This process ended its part of the job well: tells the others, and stops watching them
    /// (they end too, closing their connections).
    pub fn goodbye(&self) {
        self.done.store(true, Ordering::Relaxed);
        self.losses.send(&[GOODBYE]);
    }
}

fn send_beats(mut stream: TcpStream, done: &AtomicBool) {
    while !done.load(Ordering::Relaxed) {
        if stream.write_all(&[BEAT]).is_err() {
            return; // the watcher reports the loss
        }
        std::thread::sleep(HEARTBEAT_EVERY);
    }
}

fn watch_beats(
    stream: TcpStream,
    peer: usize,
    hosts: &[String],
    losses: &Losses,
    done: &AtomicBool,
) {
    use std::io::Read;
    if stream.set_read_timeout(Some(LOST_AFTER)).is_err() {
        return;
    }
    let mut byte = [0u8; 1];
    loop {
        let read = (&stream).read(&mut byte);
        if done.load(Ordering::Relaxed) {
            return;
        }
        let cause = match read {
            Ok(1) if byte[0] == BEAT => continue,
            Ok(1) if byte[0] == GOODBYE => return,
            Ok(1) if byte[0] == LOST => {
                let mut index = [0u8; 4];
                if (&stream).read_exact(&mut index).is_ok() {
                    let lost = u32::from_be_bytes(index) as usize;
                    losses.0.told.lock().get_or_insert((peer, lost));
                }
                continue;
            }
            Ok(_) => "its connection closed".to_owned(),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                format!("no heartbeat for {LOST_AFTER:?}")
            }
            Err(error) => error.to_string(),
        };
        lost_peer(peer, hosts, losses, &cause);
    }
}

/// Ends this process: another process of the cluster is gone. Names the first loss (`peer`,
/// or the process `peer` said it lost before it ended) and tells the heartbeat peers of it.
fn lost_peer(peer: usize, hosts: &[String], losses: &Losses, cause: &str) -> ! {
    if losses.0.ending.swap(true, Ordering::SeqCst) {
        // Another thread of this process names the loss and exits.
        loop {
            std::thread::park();
        }
    }
    let (lost, told_by) = losses.first_behind(peer);
    losses.tell(lost);
    let address = hosts.get(lost).map_or("?", String::as_str);
    let cause = match told_by {
        Some(by) => format!("lost first, as process {by} reported; then {cause}"),
        None => cause.to_owned(),
    };
    eprintln!(
        "pinstream: lost process {lost} ({address}) of the cluster ({cause}); exiting: restart the cluster, it resumes from the tables"
    );
    std::process::exit(EXIT_LOST_PEER)
}

/// Makes a broken connection to another process (timely's communication threads panic on it)
/// end this process at once with one line naming the lost process, instead of leaving the
/// workers waiting for progress that never comes.
pub fn exit_on_lost_peer(hosts: Vec<String>) -> Losses {
    let losses = Losses::default();
    let hook_losses = losses.clone();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let peer = thread.name().and_then(|name| {
            name.strip_prefix("timely:recv-")
                .or_else(|| name.strip_prefix("timely:send-"))
                .and_then(|index| index.parse::<usize>().ok())
        });
        match peer {
            Some(peer) => {
                let cause = info
                    .payload()
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| info.payload().downcast_ref::<&str>().copied())
                    .unwrap_or("connection failed");
                lost_peer(peer, &hosts, &hook_losses, cause);
            }
            None => default(info),
        }
    }));
    losses
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(hosts: &[&str], process: usize) -> Result<Cluster, ClusterError> {
        Cluster::new(
            hosts.iter().map(|h| h.to_string()).collect(),
            process,
            Duration::from_secs(2),
        )
    }

    #[test]
    fn the_first_loss_is_named_and_a_silent_peer_is_the_loss() {
        let losses = Losses::default();
        // Process 3 went and nobody said a word: it is the one lost, after the wait.
        let asked = Instant::now();
        assert_eq!(losses.first_behind(3), (3, None));
        assert!(asked.elapsed() >= LOSS_WORD_WAIT);
        // Process 2 said it lost process 1 before it went: process 1 is named, at once.
        *losses.0.told.lock() = Some((2, 1));
        let asked = Instant::now();
        assert_eq!(losses.first_behind(2), (1, Some(2)));
        assert!(asked.elapsed() < LOSS_WORD_WAIT);
        // The word is sent as LOST and the index, on every heartbeat connection.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut receiver, _) = listener.accept().unwrap();
        *losses.0.connections.lock() = vec![sender];
        losses.tell(7);
        let mut word = [0u8; 5];
        std::io::Read::read_exact(&mut receiver, &mut word).unwrap();
        assert_eq!(word, [LOST, 0, 0, 0, 7]);
    }

    #[test]
    fn hosts_and_index_are_checked() {
        assert!(cluster(&["127.0.0.1:2101", "127.0.0.1:2102"], 1).is_ok());
        assert!(matches!(
            cluster(&["127.0.0.1:2101"], 1),
            Err(ClusterError::ProcessOutOfRange { .. })
        ));
        let twice = cluster(&["127.0.0.1:2101", "127.0.0.1:2101"], 0).unwrap_err();
        assert!(twice.to_string().contains("listed twice"), "{twice}");
        let bad = cluster(&["nohost"], 0).unwrap_err();
        assert!(bad.to_string().contains("not host:port"), "{bad}");
    }

    #[test]
    fn hosts_files_skip_blanks_and_comments() {
        let dir = std::env::temp_dir().join(format!("pinstream-hosts-{}", std::process::id()));
        std::fs::write(
            &dir,
            "# the cluster\n127.0.0.1:2101\n\n127.0.0.1:2102  # second\n",
        )
        .unwrap();
        assert_eq!(
            Cluster::read_hosts(&dir).unwrap(),
            vec!["127.0.0.1:2101", "127.0.0.1:2102"]
        );
        std::fs::remove_file(&dir).unwrap();
    }

    /// A free port on loopback (bound then released).
    fn free_address() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    }

    #[test]
    fn processes_meet_in_any_order_and_mismatches_are_one_line() {
        let hosts = vec![free_address(), free_address(), free_address()];
        let run = |process: usize, workers: usize, job: &'static str, delay: u64| {
            let cluster = Cluster::new(hosts.clone(), process, Duration::from_secs(10)).unwrap();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(delay));
                rendezvous(&cluster, workers, job, &Losses::default())
            })
        };
        // Peers first, process 0 last: all meet.
        let joins = [run(2, 2, "a", 0), run(1, 2, "a", 100), run(0, 2, "a", 400)];
        for join in joins {
            join.join().unwrap().unwrap().goodbye();
        }
        // Process 1 with another worker count: every process fails, naming it.
        let joins = [run(0, 2, "a", 0), run(1, 1, "a", 0), run(2, 2, "a", 0)];
        for join in joins {
            let error = join.join().unwrap().unwrap_err().to_string();
            assert!(error.contains("process 1 runs 1 workers"), "{error}");
        }
        // Another job on process 2.
        let joins = [run(0, 2, "a", 0), run(1, 2, "a", 0), run(2, 2, "b", 0)];
        let error = joins
            .into_iter()
            .map(|join| join.join().unwrap())
            .next()
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(error.contains("process 2 runs another job"), "{error}");
    }

    #[test]
    fn a_missing_process_is_named_after_the_timeout() {
        let hosts = vec![free_address(), free_address(), free_address()];
        let peer = {
            let cluster = Cluster::new(hosts.clone(), 1, Duration::from_secs(1)).unwrap();
            std::thread::spawn(move || rendezvous(&cluster, 1, "a", &Losses::default()))
        };
        let leader = Cluster::new(hosts.clone(), 0, Duration::from_secs(1)).unwrap();
        let error = rendezvous(&leader, 1, "a", &Losses::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("process 2 ({})", hosts[2])),
            "{error}"
        );
        assert!(peer.join().unwrap().is_err());
        // And a process whose process 0 never comes names it.
        let alone = Cluster::new(hosts.clone(), 2, Duration::from_millis(500)).unwrap();
        let error = rendezvous(&alone, 1, "a", &Losses::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("process 0 ({})", hosts[0])),
            "{error}"
        );
    }
}

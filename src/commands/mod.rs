//! The subcommands: each takes its checked arguments and does one thing.

pub mod bench;
pub mod emulate;
pub mod maintain;
pub mod run;

use crate::config::ConfigError;
use crate::connectors::SourceError;
use crate::dataflow::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A benchmark's own check of its result failed (the figures would mean nothing).
    #[error("benchmark check: {0}")]
    BenchCheck(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// The tokio runtime for I/O (Delta commits, object store, signals). Timely workers are
/// threads of their own and block on it.
pub fn io_runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pinstream-io")
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            context: "starting the I/O runtime".into(),
            source,
        })
}

/// The CPU time this process has used, user and system, in seconds (every thread's);
/// `None` where the system does not tell it.
pub fn cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` where the pointer points, or fails.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialised by the successful call above (and zeroed before it).
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// A memory figure of `/proc/<process>/status` (`process`: a pid or `self`; `field`: `VmRSS`,
/// `VmHWM`, ...), bytes; `None` where the system does not tell it (or the process is gone).
pub fn status_bytes(process: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let line = status.lines().find(|line| {
        line.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

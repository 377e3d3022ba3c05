//! A TCP forwarder between the engine and a local server (moto, kinesis-mock) that a test
//! can cut: the outages of issue 13 without touching the server, which keeps its data.
//!
//! - [`Proxy::forward`]: every connection is passed through to the server.
//! - [`Proxy::refuse`]: live connections are reset and new ones are reset as soon as they
//!   are accepted (the client sees "connection reset", as when a load balancer drops it; a
//!   true "connection refused" would need the port given up, which another test could take).
//! - [`Proxy::hang`]: connections are accepted and read but never answered, and live ones
//!   stop being forwarded mid-request: only a client timeout ends the request.
//!
//! It runs on its own tokio runtime, so a synchronous test drives it from any thread.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Forward,
    Refuse,
    Hang,
}

pub struct Proxy {
    address: SocketAddr,
    mode: watch::Sender<Mode>,
    // Dropped with the proxy: every connection task ends with it.
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream` (`http://host:port` or
    /// `host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the proxy's runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("a free port for the proxy");
        let address = listener.local_addr().unwrap();
        let (mode, watching) = watch::channel(Mode::Forward);
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(connection(client, upstream.clone(), watching.clone()));
            }
        });
        Proxy {
            address,
            mode,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:<port>`: the endpoint to give the engine.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn forward(&self) {
        self.set(Mode::Forward);
    }

    pub fn refuse(&self) {
        self.set(Mode::Refuse);
    }

    pub fn hang(&self) {
        self.set(Mode::Hang);
    }

    /// Connections hear of a change only: forwarding twice must not cut a live one.
    fn set(&self, mode: Mode) {
        self.mode.send_if_modified(|current| {
            let changed = *current != mode;
            *current = mode;
            changed
        });
    }
}

/// Closes `stream` with a reset (SO_LINGER 0), not a polite FIN: the peer's next read or
/// write fails at once.
fn reset(stream: TcpStream) {
    // Deprecated because a non-zero linger blocks the thread on drop; zero never waits.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Reads and drops what `client` sends until the mode changes (or it hangs up): a server
/// that took the request and never answers.
async fn swallow(client: &mut TcpStream, mode: &mut watch::Receiver<Mode>) {
    let mut discard = [0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = client.read(&mut discard) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return;
                }
            }
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() != Mode::Hang {
                    return;
                }
            }
        }
    }
}

async fn connection(mut client: TcpStream, upstream: String, mut mode: watch::Receiver<Mode>) {
    let current = *mode.borrow_and_update();
    match current {
        Mode::Refuse => return reset(client),
        Mode::Hang => {
            swallow(&mut client, &mut mode).await;
            return reset(client);
        }
        Mode::Forward => {}
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return reset(client);
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    loop {
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
            changed = mode.changed() => {
                let now = if changed.is_err() { Mode::Refuse } else { *mode.borrow() };
                match now {
                    Mode::Forward => continue,
                    Mode::Refuse => break,
                    Mode::Hang => {
                        // Mid-request: nothing more goes either way until the outage ends.
                        swallow(&mut client, &mut mode).await;
                        break;
                    }
                }
            }
        }
    }
    reset(server);
    reset(client);
}

//! A private Kafka broker (tansu) for tests that must stop one: its own free port and durable
//! storage (`s3://<bucket>/` on the local S3 server), so a restarted broker still holds the
//! topics and messages. The shared broker on PINSTREAM_KAFKA is never stopped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The local S3 server's port (PINSTREAM_S3_ENDPOINT), or `None` (and a message) to skip.
pub fn s3_port() -> Option<u16> {
    let endpoint = std::env::var("PINSTREAM_S3_ENDPOINT").unwrap_or_default();
    let port = endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok());
    if port.is_none() {
        eprintln!(
            "SKIPPED: PINSTREAM_S3_ENDPOINT is not set; start S3 with \
             `scripts/services.sh start s3 && eval \"$(scripts/services.sh env)\"`"
        );
    }
    port
}

fn tansu() -> PathBuf {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/services.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg("tansu-path")
        .output()
        .unwrap();
    assert!(output.status.success(), "services.sh tansu-path failed");
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// A tansu broker on 127.0.0.1:`port` storing into `s3://<bucket>/`.
pub struct PrivateBroker {
    pub port: u16,
    bucket: String,
    child: Option<Child>,
    log: PathBuf,
}

impl PrivateBroker {
    /// Creates `bucket` on the S3 server at `s3_port` and starts the broker.
    pub fn start(s3_port: u16, bucket: &str, log: PathBuf) -> PrivateBroker {
        let created = super::http_send(s3_port, "PUT", &format!("/{bucket}"), "");
        assert!(
            matches!(created, Some((200, _))),
            "creating bucket {bucket}: {created:?}"
        );
        let mut broker = PrivateBroker {
            port: super::free_port(),
            bucket: bucket.to_owned(),
            child: None,
            log,
        };
        broker.restart();
        broker
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker (again, on the same port and storage) and waits until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let url = format!("tcp://{}", self.address());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", &format!("s3://{}/", self.bucket)])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "tansu did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the broker (SIGTERM, then SIGKILL after 5 s) and waits until it is gone.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(5) {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

//! The S3 object store under every `s3://` table, made patient: once the lake has answered,
//! an outage (connections refused or reset, requests timing out, 5xx) is waited out instead
//! of failing the run.
//!
//! Each request still has its bounds ([`super::delta::storage_options`]: a 30 s timeout per
//! attempt, 5 retries within 30 s): they decide when an attempt has failed. What this layer
//! adds is what to do then. Before the lake has ever answered (a wrong endpoint, a missing
//! bucket, no network at start) the error is returned and the run fails in one line. After,
//! the request is tried again every few seconds until it succeeds: the outage is logged once
//! when it begins and once when it ends, and [`crate::stats::lake_outage`] says the lake is
//! down (`pinstream_lake_up 0` on `/metrics`). Meanwhile the batches read stay held and the
//! sources pause once [`crate::dataflow`]'s in-flight limit is reached, so memory stays
//! bounded; nothing is read twice or lost when the lake comes back.
//!
//! Every request kind is covered, because delta-rs uses them all on the commit path: puts
//! (data files, commit files with `If-None-Match`, checkpoints), gets (the log), lists,
//! heads. Two need care:
//! - **Uploads** are buffered and sent as one put when completed: a multipart part cannot be
//!   sent again under the same number once its attempt failed, a whole put can. Data files
//!   are one per batch, table and worker (megabytes), so this costs what the multipart
//!   buffers cost anyway.
//! - **A conditional put** (a commit file) whose answer was lost may have landed: when its
//!   retry is refused as "already exists" and the stored object is byte for byte ours, it is
//!   our own commit and counts as done (otherwise delta-rs would see a conflict with itself).
//!
//! Gets (up to 16 MiB) and lists are read whole inside the retry, so a connection cut
//! mid-body is retried too (log files, checkpoints and listings are small); larger bodies are
//! streamed as before.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use deltalake::logstore::{ObjectStoreFactory, ObjectStoreRef, StorageConfig};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    UploadPart,
};
use url::Url;

use crate::stats::lake_outage;

/// Waits between attempts while the lake is down: the first, then doubling up to the last.
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// Whether any request of this process got an answer from the lake (success or a definite
/// refusal): from then on, transient errors are outages to wait out.
static ANSWERED: AtomicBool = AtomicBool::new(false);

/// Puts the patient store under every `s3://` and `s3a://` table this process opens (the
/// tables, aggregate snapshots, maintenance, archive reads). Idempotent.
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let factories = deltalake::logstore::object_store_factories();
        for scheme in ["s3://", "s3a://"] {
            let key = Url::parse(scheme).expect("a scheme URL");
            let Some(inner) = factories.get(&key).map(|entry| entry.value().clone()) else {
                continue; // built without S3 support: nothing to wrap
            };
            factories.insert(key, Arc::new(PatientFactory { inner }));
        }
    });
}

struct PatientFactory {
    inner: Arc<dyn ObjectStoreFactory>,
}

impl ObjectStoreFactory for PatientFactory {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> deltalake::DeltaResult<(ObjectStoreRef, Path)> {
        let (inner, prefix) = self.inner.parse_url_opts(url, config)?;
        Ok((Arc::new(Patient { inner }), prefix))
    }
}

/// True for the errors a working lake does not give: the request did not get through or
/// got no answer (connect, send, timeout, a cut body), or the server failed (5xx, 429).
/// A definite answer (not found, already exists, precondition, access denied, 4xx) is not.
fn transient(error: &object_store::Error) -> bool {
    let object_store::Error::Generic { source, .. } = error else {
        return false;
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
    while let Some(error) = cause {
        if error
            .downcast_ref::<object_store::client::HttpError>()
            .is_some()
        {
            return true;
        }
        cause = error.source();
    }
    // Statuses are only in the text (object_store's retry error is private).
    let text = source.to_string();
    text.contains("status code: 5") || text.contains("status code: 429")
}

/// Runs `attempt` until it gives something other than a transient error once the lake has
/// answered, logging the outage once and marking it in [`lake_outage`].
async fn patiently<T, F, A>(what: &str, location: &str, mut attempt: A) -> object_store::Result<T>
where
    A: FnMut() -> F,
    F: Future<Output = object_store::Result<T>>,
{
    let mut wait = FIRST_WAIT;
    loop {
        match attempt().await {
            Err(error) if transient(&error) && ANSWERED.load(Ordering::Relaxed) => {
                if lake_outage().down() {
                    tracing::warn!(
                        "lake unreachable ({what} {location}: {}); holding the batches read, reading pauses at the in-flight limit, retrying until the lake answers",
                        super::one_line(&error)
                    );
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LONGEST_WAIT);
            }
            result => {
                let answered = match &result {
                    Ok(_) => true,
                    Err(error) => !transient(error),
                };
                if answered {
                    ANSWERED.store(true, Ordering::Relaxed);
                    if let Some(down) = lake_outage().up() {
                        tracing::info!(
                            "lake reachable again after {:.1} s; committing the held batches",
                            down.as_secs_f64()
                        );
                    }
                }
                return result;
            }
        }
    }
}

/// Bodies up to this size are read whole inside the retry; larger ones (archive objects,
/// big data files) are streamed as they come, so reading them costs no more memory than it
/// did, and only their request is retried.
const WHOLE_BODY_LIMIT: u64 = 16 << 20;

/// The whole body of a get (when small), as a get result of one chunk.
async fn read_whole(result: GetResult) -> object_store::Result<GetResult> {
    if result.range.end.saturating_sub(result.range.start) > WHOLE_BODY_LIMIT {
        return Ok(result);
    }
    let (meta, range, attributes) = (
        result.meta.clone(),
        result.range.clone(),
        result.attributes.clone(),
    );
    let bytes = result.bytes().await?;
    Ok(GetResult {
        payload: GetResultPayload::Stream(futures::stream::once(async move { Ok(bytes) }).boxed()),
        meta,
        range,
        attributes,
    })
}

#[derive(Debug)]
struct Patient {
    inner: ObjectStoreRef,
}

impl std::fmt::Display for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Patient({})", self.inner)
    }
}

impl Patient {
    /// A put, retried through an outage. A conditional create refused after an attempt that
    /// got no answer is ours when the stored bytes are ours.
    async fn put(
        inner: &ObjectStoreRef,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let create = matches!(opts.mode, PutMode::Create);
        let unanswered = AtomicBool::new(false);
        let result = patiently("put", location.as_ref(), || {
            let attempt = inner.put_opts(location, payload.clone(), opts.clone());
            let unanswered = &unanswered;
            async move {
                let result = attempt.await;
                if result.as_ref().is_err_and(transient) {
                    unanswered.store(true, Ordering::Relaxed);
                }
                result
            }
        })
        .await;
        match result {
            Err(object_store::Error::AlreadyExists { .. })
                if create && unanswered.load(Ordering::Relaxed) =>
            {
                let stored = patiently("get", location.as_ref(), || async {
                    inner
                        .get_opts(location, GetOptions::default())
                        .await?
                        .bytes()
                        .await
                })
                .await?;
                let ours: Vec<u8> = payload
                    .iter()
                    .flat_map(|chunk| chunk.iter().copied())
                    .collect();
                if stored.as_ref() == ours.as_slice() {
                    tracing::debug!(%location, "a put whose answer was lost had landed");
                    Ok(PutResult {
                        e_tag: None,
                        version: None,
                    })
                } else {
                    result
                }
            }
            result => result,
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for Patient {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        Patient::put(&self.inner, location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Ok(Box::new(BufferedUpload {
            inner: self.inner.clone(),
            location: location.clone(),
            opts,
            parts: Vec::new(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        patiently("get", location.as_ref(), || async {
            read_whole(self.inner.get_opts(location, options.clone()).await?).await
        })
        .await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        patiently("get", location.as_ref(), || {
            self.inner.get_ranges(location, ranges)
        })
        .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        // Only vacuum deletes, outside the commit path: its errors are its own.
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (inner, prefix) = (self.inner.clone(), prefix.cloned());
        whole_listing(prefix.clone(), move || inner.list(prefix.as_ref()))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (inner, prefix, offset) = (self.inner.clone(), prefix.cloned(), offset.clone());
        whole_listing(prefix.clone(), move || {
            inner.list_with_offset(prefix.as_ref(), &offset)
        })
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let location = prefix.map_or("", |p| p.as_ref());
        patiently("list", location, || self.inner.list_with_delimiter(prefix)).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        patiently("copy", from.as_ref(), || {
            self.inner.copy_opts(from, to, options.clone())
        })
        .await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        patiently("rename", from.as_ref(), || {
            self.inner.rename_opts(from, to, options.clone())
        })
        .await
    }
}

/// A listing read whole inside the retry (a page failing halfway starts it again), then
/// streamed.
fn whole_listing(
    prefix: Option<Path>,
    list: impl Fn() -> BoxStream<'static, object_store::Result<ObjectMeta>> + Send + Sync + 'static,
) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
    futures::stream::once(async move {
        let location = prefix.as_ref().map_or("", |p| p.as_ref()).to_owned();
        patiently("list", &location, || async {
            let items: Vec<_> = list().collect().await;
            items.into_iter().collect::<object_store::Result<Vec<_>>>()
        })
        .await
    })
    .flat_map(|listing| match listing {
        Ok(items) => futures::stream::iter(items.into_iter().map(Ok)).boxed(),
        Err(error) => futures::stream::once(async move { Err(error) }).boxed(),
    })
    .boxed()
}

/// An upload kept in memory and sent as one put when completed (see the module doc).
#[derive(Debug)]
struct BufferedUpload {
    inner: ObjectStoreRef,
    location: Path,
    opts: PutMultipartOptions,
    parts: Vec<PutPayload>,
}

#[async_trait::async_trait]
impl MultipartUpload for BufferedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.parts.push(data);
        Box::pin(async { Ok(()) })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let payload: PutPayload = std::mem::take(&mut self.parts)
            .into_iter()
            .flat_map(|part| part.into_iter())
            .collect();
        let PutMultipartOptions {
            tags,
            attributes,
            extensions,
        } = self.opts.clone();
        let opts = PutOptions {
            mode: PutMode::Overwrite,
            tags,
            attributes,
            extensions,
        };
        Patient::put(&self.inner, &self.location, payload, opts).await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.parts.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(text: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: text.to_owned().into(),
        }
    }

    #[test]
    fn only_errors_a_working_lake_does_not_give_are_outages() {
        assert!(transient(&generic(
            "Error performing PUT: Server returned non-2xx status code: 503 Service Unavailable"
        )));
        assert!(transient(&generic(
            "Server returned non-2xx status code: 429 Too Many Requests"
        )));
        // Definite answers: the lake is there and said no.
        assert!(!transient(&generic(
            "Server returned non-2xx status code: 403 Forbidden: AccessDenied"
        )));
        assert!(!transient(&object_store::Error::NotFound {
            path: "a".into(),
            source: "gone".into(),
        }));
        assert!(!transient(&object_store::Error::AlreadyExists {
            path: "a".into(),
            source: "there".into(),
        }));
    }

    /// A store whose first put lands but whose answer is "lost" (a 503, as a cut connection
    /// would be transient too).
    #[derive(Debug)]
    struct LostAnswer {
        inner: object_store::memory::InMemory,
        lost: AtomicBool,
    }

    impl std::fmt::Display for LostAnswer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "LostAnswer")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for LostAnswer {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            let result = self.inner.put_opts(location, payload, opts).await;
            if !self.lost.swap(true, Ordering::Relaxed) {
                return Err(generic("Server returned non-2xx status code: 503"));
            }
            result
        }
        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[tokio::test]
    async fn a_conditional_put_that_landed_but_lost_its_answer_is_ours_and_another_is_not() {
        ANSWERED.store(true, Ordering::Relaxed);
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let location = Path::from("_delta_log/00000000000000000001.json");
        let ours = PutPayload::from_static(b"{\"commitInfo\":{\"ours\":true}}\n");
        let store: ObjectStoreRef = Arc::new(LostAnswer {
            inner: object_store::memory::InMemory::new(),
            lost: AtomicBool::new(false),
        });
        // The first attempt lands, its answer is lost; the retry is refused as existing and
        // the stored bytes are ours: done.
        Patient::put(&store, &location, ours.clone(), create.clone())
            .await
            .unwrap();
        assert!(!lake_outage().state().0, "the outage ended with the put");
        // Another writer's commit at that version stays a conflict, lost answer or not.
        let theirs = PutPayload::from_static(b"{\"commitInfo\":{\"theirs\":true}}\n");
        let inner = object_store::memory::InMemory::new();
        inner
            .put_opts(&location, theirs, create.clone())
            .await
            .unwrap();
        let store: ObjectStoreRef = Arc::new(LostAnswer {
            inner,
            lost: AtomicBool::new(false),
        });
        let ours_refused = Patient::put(&store, &location, ours, create).await;
        assert!(matches!(
            ours_refused,
            Err(object_store::Error::AlreadyExists { .. })
        ));
    }

    #[tokio::test]
    async fn a_conditional_put_refused_without_a_lost_answer_stays_a_conflict() {
        let inner: ObjectStoreRef = Arc::new(object_store::memory::InMemory::new());
        let location = Path::from("_delta_log/00000000000000000001.json");
        let ours = PutPayload::from_static(b"{\"commitInfo\":{}}\n");
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        inner
            .put_opts(&location, ours.clone(), create.clone())
            .await
            .unwrap();
        // Without a failed attempt before it, "already exists" is a real conflict.
        let again = Patient::put(&inner, &location, ours, create).await;
        assert!(matches!(
            again,
            Err(object_store::Error::AlreadyExists { .. })
        ));
    }
}

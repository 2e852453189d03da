//! `JobContext`: what a running job can ask of the host.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::encoding::StateEncoding;
use crate::error::{Error, Result};
use crate::ffi;
use crate::log::{self, LogLevel};

/// The running job's handle on the host: logs, progress, checkpoints,
/// interrupts, metrics and host operations (`spacedrive_call`).
///
/// The generated `execute_<fn>` builds it from the host's context JSON
/// (`{"job_id": "<uuid>", "library_id": "<uuid>"}`). [`JobContext::new`]
/// makes one for native unit tests of job logic.
pub struct JobContext {
    job_id: String,
    library_id: String,
    job_uuid: [u8; 16],
    library_uuid: [u8; 16],
    job_name: &'static str,
    encoding: StateEncoding,
    resumed: Option<bool>,
}

#[derive(Deserialize)]
struct ContextJson {
    job_id: String,
    library_id: String,
    #[serde(default)]
    resumed: Option<bool>,
}

#[derive(Serialize)]
struct KvGet<'a> {
    key: &'a str,
}

#[derive(Deserialize)]
struct KvGot {
    value: Option<String>,
}

#[derive(Serialize)]
struct KvSet<'a> {
    key: &'a str,
    value: &'a str,
}

#[derive(Deserialize)]
struct ConfigGot<T> {
    config: Option<T>,
}

#[derive(Deserialize)]
struct KvSetResult {
    ok: bool,
}

impl JobContext {
    /// A context for `job_id` in `library_id` (UUID strings), checkpointing in `encoding`.
    pub fn new(job_id: &str, library_id: &str, encoding: StateEncoding) -> Self {
        JobContext {
            job_uuid: parse_uuid(job_id),
            library_uuid: parse_uuid(library_id),
            job_id: job_id.to_owned(),
            library_id: library_id.to_owned(),
            job_name: "",
            encoding,
            resumed: None,
        }
    }

    pub(crate) fn from_host(ctx: &[u8], job_name: &'static str, encoding: StateEncoding) -> Result<Self> {
        let parsed: ContextJson = serde_json::from_slice(ctx)
            .map_err(|e| Error::msg(format!("the host's job context is not valid: {}", e)))?;
        let mut ctx = JobContext::new(&parsed.job_id, &parsed.library_id, encoding);
        ctx.job_name = job_name;
        ctx.resumed = parsed.resumed;
        Ok(ctx)
    }

    pub(crate) fn resumed_flag(&self) -> Option<bool> {
        self.resumed
    }

    /// True when this run continues from a checkpoint (false on a first run, and
    /// under a host that does not say).
    pub fn is_resumed(&self) -> bool {
        self.resumed == Some(true)
    }

    /// The job's id (a UUID string).
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The library (tenant) the job was submitted under (a UUID string).
    pub fn library_id(&self) -> &str {
        &self.library_id
    }

    /// The job id's 16 raw bytes (all zero if it is not a UUID).
    pub fn job_id_bytes(&self) -> &[u8; 16] {
        &self.job_uuid
    }

    /// The library id's 16 raw bytes (all zero if it is not a UUID).
    pub fn library_id_bytes(&self) -> &[u8; 16] {
        &self.library_uuid
    }

    /// The job's registered name (empty in a context made by [`JobContext::new`]).
    pub fn job_name(&self) -> &str {
        self.job_name
    }

    /// The encoding [`JobContext::checkpoint`] writes.
    pub fn state_encoding(&self) -> StateEncoding {
        self.encoding
    }

    /// Log at info level (the Spacedrive SDK's `log`).
    pub fn log(&self, msg: impl AsRef<str>) {
        log::info(msg.as_ref())
    }

    /// Log at a chosen level.
    pub fn log_at(&self, level: LogLevel, msg: impl AsRef<str>) {
        log::log(level, msg.as_ref())
    }

    /// Log at error level (the Spacedrive SDK's `log_error`).
    pub fn log_error(&self, msg: impl AsRef<str>) {
        log::error(msg.as_ref())
    }

    /// Log at debug level.
    pub fn debug(&self, msg: impl AsRef<str>) {
        log::debug(msg.as_ref())
    }

    /// Log at info level.
    pub fn info(&self, msg: impl AsRef<str>) {
        log::info(msg.as_ref())
    }

    /// Log at warn level.
    pub fn warn(&self, msg: impl AsRef<str>) {
        log::warn(msg.as_ref())
    }

    /// Log at error level.
    pub fn error(&self, msg: impl AsRef<str>) {
        log::error(msg.as_ref())
    }

    /// Report progress: `fraction` in [0, 1] and a short message.
    pub fn report_progress(&self, fraction: f32, msg: impl AsRef<str>) {
        let msg = msg.as_ref();
        unsafe { ffi::job_report_progress(self.job_uuid.as_ptr(), fraction, msg.as_ptr(), msg.len()) }
    }

    /// Persist `state` so a resumed run starts from it. Fails when the host did
    /// not save it (too large, lease lost, store down): stop the job then.
    pub fn checkpoint<S: Serialize + ?Sized>(&self, state: &S) -> Result<()> {
        let bytes = self.encoding.encode(state)?;
        let code = unsafe { ffi::job_checkpoint(self.job_uuid.as_ptr(), bytes.as_ptr(), bytes.len()) };
        if code == 0 {
            Ok(())
        } else {
            Err(Error::msg(format!(
                "the host did not save a checkpoint of {} bytes (code {}: too large, lease lost or store down)",
                bytes.len(),
                code
            )))
        }
    }

    /// True when the host asks the job to stop (pause, cancel, end of time slice).
    pub fn check_interrupt(&self) -> bool {
        unsafe { ffi::job_check_interrupt(self.job_uuid.as_ptr()) != 0 }
    }

    /// `Err(Error::Interrupted)` when the host asks the job to stop, for `ctx.check()?`.
    /// The generated export then checkpoints the state as it is and returns 1, so
    /// call it where the state is consistent.
    pub fn check(&self) -> Result<()> {
        if self.check_interrupt() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Record a non-fatal problem with the job.
    pub fn add_warning(&self, msg: impl AsRef<str>) {
        let msg = msg.as_ref();
        unsafe { ffi::job_add_warning(self.job_uuid.as_ptr(), msg.as_ptr(), msg.len()) }
    }

    /// Count `n` more items processed.
    pub fn increment_items(&self, n: u64) {
        unsafe { ffi::job_increment_items(self.job_uuid.as_ptr(), n) }
    }

    /// Count `n` more bytes processed.
    pub fn increment_bytes(&self, n: u64) {
        unsafe { ffi::job_increment_bytes(self.job_uuid.as_ptr(), n) }
    }

    /// Call a host operation with a JSON request and decode its JSON result.
    ///
    /// `method` is e.g. `"query:kv.get.v1"`; the manifest's
    /// `permissions.methods` must allow it. The host logs why a call failed.
    pub fn call<Req, Resp>(&self, method: &str, request: &Req) -> Result<Resp>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let payload = serde_json::to_vec(request)
            .map_err(|e| Error::msg(format!("cannot encode the request to {}: {}", method, e)))?;
        let body = ffi::host_call(method, &self.library_uuid, &payload)
            .ok_or_else(|| Error::HostCall(format!("{} failed (the reason is in the job log)", method)))?;
        serde_json::from_slice(&body)
            .map_err(|e| Error::HostCall(format!("unexpected result from {}: {}", method, e)))
    }

    /// Read a value stored with [`JobContext::kv_set`] (`query:kv.get.v1`); `None` when
    /// the key was never set. Values are JSON text in the store: `kv_get::<u64>("n")`.
    pub fn kv_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.kv_get_str(key)? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::Serialization(format!("key {:?} does not hold the type asked for: {}", key, e))),
        }
    }

    /// Store any serializable value as JSON text (`action:kv.set.v1`), scoped to the
    /// extension and tenant; at most 64 KiB.
    pub fn kv_set<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string(value).map_err(|e| Error::Serialization(e.to_string()))?;
        self.kv_set_str(key, &text)
    }

    /// Read a raw string from the key-value store (`query:kv.get.v1`).
    pub fn kv_get_str(&self, key: &str) -> Result<Option<String>> {
        let got: KvGot = self.call("query:kv.get.v1", &KvGet { key })?;
        Ok(got.value)
    }

    /// Store a raw string in the key-value store (`action:kv.set.v1`).
    pub fn kv_set_str(&self, key: &str, value: &str) -> Result<()> {
        let done: KvSetResult = self.call("action:kv.set.v1", &KvSet { key, value })?;
        if done.ok {
            Ok(())
        } else {
            Err(Error::HostCall(format!("the host did not store key {:?}", key)))
        }
    }

    /// The extension's configuration (`query:config.get.v1`): the manifest's
    /// `wasmjob.config` object decoded as `T`; `T::default()` when there is none.
    pub fn config<T: DeserializeOwned + Default>(&self) -> Result<T> {
        let got: ConfigGot<T> = self.call("query:config.get.v1", &serde_json::json!({}))?;
        Ok(got.config.unwrap_or_default())
    }
}

/// A UUID's 16 bytes from its hyphenated (or plain) hex form; zeros if it is not one.
fn parse_uuid(text: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return [0u8; 16];
    }
    for (i, pair) in hex.chunks(2).enumerate() {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = hi << 4 | lo,
            _ => return [0u8; 16],
        }
    }
    out
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_uuid;

    #[test]
    fn uuid_text_becomes_its_sixteen_bytes() {
        let bytes = parse_uuid("00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(bytes[0], 0x00);
        assert_eq!(bytes[5], 0x55);
        assert_eq!(bytes[15], 0xff);
        assert_eq!(parse_uuid("not-a-uuid"), [0u8; 16]);
    }
}

//! How a job's state becomes bytes: JSON (the default, Spacedrive's) or MessagePack.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// A state encoding. One per extension: `manifest.json` declares it under
/// `wasmjob.state_encoding` so the host can encode parameters and show results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateEncoding {
    /// UTF-8 JSON via serde_json.
    Json,
    /// MessagePack via rmp-serde; structs are maps keyed by field name.
    Msgpack,
}

impl StateEncoding {
    /// The name the manifest uses: `"json"` or `"msgpack"`.
    pub const fn name(self) -> &'static str {
        match self {
            StateEncoding::Json => "json",
            StateEncoding::Msgpack => "msgpack",
        }
    }

    /// Encode a state value.
    pub fn encode<S: Serialize + ?Sized>(self, state: &S) -> Result<Vec<u8>> {
        let bytes = match self {
            StateEncoding::Json => serde_json::to_vec(state).map_err(|e| e.to_string()),
            StateEncoding::Msgpack => rmp_serde::to_vec_named(state).map_err(|e| e.to_string()),
        };
        bytes.map_err(|e| Error::msg(format!("cannot encode the state as {}: {}", self.name(), e)))
    }

    /// Decode a state value; empty bytes give `S::default()`.
    pub fn decode<S: DeserializeOwned + Default>(self, bytes: &[u8]) -> Result<S> {
        if bytes.is_empty() {
            return Ok(S::default());
        }
        let value = match self {
            StateEncoding::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            StateEncoding::Msgpack => rmp_serde::from_slice(bytes).map_err(|e| e.to_string()),
        };
        value.map_err(|e| Error::msg(format!("cannot decode the state as {}: {}", self.name(), e)))
    }

    /// Decode any value (no default for empty bytes).
    pub fn decode_any<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T> {
        let value = match self {
            StateEncoding::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            StateEncoding::Msgpack => rmp_serde::from_slice(bytes).map_err(|e| e.to_string()),
        };
        value.map_err(|e| Error::Serialization(format!("cannot decode {}: {}", self.name(), e)))
    }

    /// An empty map in this encoding.
    pub(crate) fn empty_map(self) -> Vec<u8> {
        match self {
            StateEncoding::Json => b"{}".to_vec(),
            StateEncoding::Msgpack => vec![0x80],
        }
    }

    pub(crate) const fn code(self) -> u8 {
        match self {
            StateEncoding::Json => 0,
            StateEncoding::Msgpack => 1,
        }
    }

    pub(crate) const fn from_code(code: u8) -> Self {
        match code {
            1 => StateEncoding::Msgpack,
            _ => StateEncoding::Json,
        }
    }
}

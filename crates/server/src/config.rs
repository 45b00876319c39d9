//! Limits and timeouts of the server, with defaults near nginx's and Kestrel's.

use std::time::Duration;

use serde::Deserialize;

/// Every limit and timeout of the server. Each has a documented default; all
/// can be set from the command line or a TOML file (`[server]` keys with the
/// same names, durations in seconds as floats).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The whole request head must arrive within this time from its first
    /// byte, else 408 and close. Default 30 s (Kestrel's RequestHeadersTimeout;
    /// nginx's client_header_timeout is 60 s).
    #[serde(with = "secs")]
    pub header_timeout: Duration,
    /// An idle keep-alive connection is closed after this. Default 75 s (nginx keepalive_timeout).
    #[serde(with = "secs")]
    pub keep_alive_timeout: Duration,
    /// A body read that gets no byte for this long fails with 408. Default 30 s.
    #[serde(with = "secs")]
    pub body_timeout: Duration,
    /// After `min_rate_grace`, a body must arrive at least this fast (bytes/s),
    /// else 408. Default 240 B/s (Kestrel's MinRequestBodyDataRate).
    pub min_body_rate: u64,
    /// A response write must progress at least this fast (bytes/s) after
    /// `min_rate_grace`, else the connection is closed. Default 240 B/s (Kestrel).
    pub min_write_rate: u64,
    /// Grace period before the minimum rates apply. Default 5 s (Kestrel).
    #[serde(with = "secs")]
    pub min_rate_grace: Duration,
    /// A write that makes no progress for this long closes the connection. Default 30 s.
    #[serde(with = "secs")]
    pub write_timeout: Duration,
    /// Longest request line (method, target, version); longer gets 414. Default 8 KiB.
    pub max_request_line: usize,
    /// Largest request head; larger gets 431. Default 16 KiB.
    pub max_head: usize,
    /// Most header fields; more gets 431. Default 100 (at most 100).
    pub max_headers: usize,
    /// Largest request body; larger gets 413. Default 1 MiB (nginx client_max_body_size).
    pub max_body: u64,
    /// Most open connections in the whole server; above it new ones get 503
    /// and are closed. Default 16,384.
    pub max_connections: usize,
    /// Graceful shutdown waits this long for in-flight requests. Default 10 s.
    #[serde(with = "secs")]
    pub shutdown_timeout: Duration,
    /// Log one line per request. Default off.
    pub access_log: bool,
    /// Largest WebSocket message (and frame); larger closes with 1009. Default 1 MiB.
    pub ws_max_message: usize,
    /// A WebSocket quiet for this long gets a ping; 0 turns pings off. Default 30 s.
    #[serde(with = "secs")]
    pub ws_ping_interval: Duration,
    /// A WebSocket that sends nothing (not even a pong) for this long is
    /// closed with 1001; 0 turns it off. Default 75 s.
    #[serde(with = "secs")]
    pub ws_idle_timeout: Duration,
    /// Messages a broadcast subscriber may have queued. Default 256.
    pub broadcast_queue: usize,
    /// What a full subscriber queue does: `"drop-oldest"` (the subscriber is
    /// told how many it missed) or `"close"`. Default `"drop-oldest"`.
    pub slow_consumer: SlowConsumer,
}

/// What a broadcast subscriber's full queue does with one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlowConsumer {
    /// Drop the oldest queued message.
    #[default]
    DropOldest,
    /// Close the subscriber (a WebSocket gets close 1008).
    Close,
}

impl std::str::FromStr for SlowConsumer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "drop-oldest" => Ok(SlowConsumer::DropOldest),
            "close" => Ok(SlowConsumer::Close),
            _ => Err(format!(
                "slow consumer policy must be drop-oldest or close, not {s:?}"
            )),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            header_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(75),
            body_timeout: Duration::from_secs(30),
            min_body_rate: 240,
            min_write_rate: 240,
            min_rate_grace: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            max_request_line: 8 * 1024,
            max_head: 16 * 1024,
            max_headers: 100,
            max_body: 1024 * 1024,
            max_connections: 16_384,
            shutdown_timeout: Duration::from_secs(10),
            access_log: false,
            ws_max_message: 1 << 20,
            ws_ping_interval: Duration::from_secs(30),
            ws_idle_timeout: Duration::from_secs(75),
            broadcast_queue: 256,
            slow_consumer: SlowConsumer::DropOldest,
        }
    }
}

impl Config {
    /// The codec's limits from these settings.
    pub fn limits(&self) -> gyre_http::Limits {
        gyre_http::Limits {
            max_request_line: self.max_request_line,
            max_head: self.max_head,
            max_headers: self.max_headers,
        }
    }
}

impl Config {
    /// WebSocket limits and keep-alive from these settings.
    pub fn ws(&self) -> crate::ws::WsConfig {
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        crate::ws::WsConfig {
            max_frame: self.ws_max_message,
            max_message: self.ws_max_message,
            ping_interval: nonzero(self.ws_ping_interval),
            idle_timeout: nonzero(self.ws_idle_timeout),
            protocols: Vec::new(),
        }
    }

    /// Broadcast topic settings from these settings.
    pub fn topic(&self) -> gyre_rt::broadcast::TopicConfig {
        gyre_rt::broadcast::TopicConfig {
            capacity: self.broadcast_queue.max(1),
            overflow: match self.slow_consumer {
                SlowConsumer::DropOldest => gyre_rt::broadcast::Overflow::DropOldest,
                SlowConsumer::Close => gyre_rt::broadcast::Overflow::Close,
            },
        }
    }
}

/// Durations as seconds (floats allowed) in TOML.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = f64::deserialize(d)?;
        Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom)
    }
}

//! The agent's configuration file (TOML, every key optional), shared by `run` and `detect`.

use crate::clips::ClipsConfig;
use crate::error::Error;
use crate::motion::DetectorConfig;
use crate::ptz::PtzConfig;
use serde::Deserialize;
use std::path::Path;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// `[motion]`: motion detection (see `docs/config.md`).
    pub motion: DetectorConfig,
    /// `[queue]`: the snapshots waiting for the relay.
    pub queue: QueueConfig,
    /// `[ptz]`: the pan-tilt driver.
    pub ptz: PtzConfig,
    /// `[clips]`: video clips of events.
    pub clips: ClipsConfig,
}

/// `[queue]`: the durable upload queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Disk the queued snapshots may take, in bytes; beyond it the oldest are dropped (and
    /// counted), so a long relay outage cannot fill the camera's disk.
    pub max_bytes: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

impl AgentConfig {
    /// Reads and checks `path`; `None`: every default.
    pub fn load(path: Option<&Path>) -> Result<AgentConfig, Error> {
        let Some(path) = path else {
            return Ok(AgentConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        AgentConfig::parse(&text).map_err(|e| match e {
            Error::Config(why) => Error::Config(format!("{}: {why}", path.display())),
            other => other,
        })
    }

    /// Parses and checks a config file's text.
    pub fn parse(text: &str) -> Result<AgentConfig, Error> {
        let config: AgentConfig =
            toml::from_str(text).map_err(|e| Error::Config(e.message().to_owned()))?;
        config
            .motion
            .tuning()
            .map_err(|e| Error::Config(format!("motion: {e}")))?;
        config
            .ptz
            .check()
            .map_err(|e| Error::Config(format!("ptz: {e}")))?;
        config
            .clips
            .check()
            .map_err(|e| Error::Config(format!("clips: {e}")))?;
        if config.clips.enabled && !config.motion.enabled {
            return Err(Error::Config(
                "clips: events come from motion detection, which [motion] turns off".into(),
            ));
        }
        Ok(config)
    }
}

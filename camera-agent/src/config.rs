//! The agent's configuration file (TOML, every key optional), shared by `run` and `detect`.

use crate::error::Error;
use crate::motion::DetectorConfig;
use serde::Deserialize;
use std::path::Path;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// `[motion]`: motion detection (see `docs/config.md`).
    pub motion: DetectorConfig,
}

impl AgentConfig {
    /// Reads and checks `path`; `None`: every default.
    pub fn load(path: Option<&Path>) -> Result<AgentConfig, Error> {
        let Some(path) = path else {
            return Ok(AgentConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        let config: AgentConfig = toml::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.message())))?;
        config
            .motion
            .tuning()
            .map_err(|e| Error::Config(format!("{}: motion: {e}", path.display())))?;
        Ok(config)
    }
}

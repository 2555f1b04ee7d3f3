//! The desktop app's own preferences, in `desktop.json` in the data dir.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
#[ts(export)]
pub struct Prefs {
    /// Do not disturb: no notifications at all.
    pub dnd: bool,
    /// Also notify for L2 activity (actions agents ran and only reported).
    pub notify_activity: bool,
    /// Approve and Deny buttons on request notifications. Off by default:
    /// notifications reach lock screens.
    pub notify_actions: bool,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("desktop.json")
}

pub fn load(data_dir: &Path) -> Prefs {
    std::fs::read(path(data_dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn save(data_dir: &Path, prefs: &Prefs) -> std::io::Result<()> {
    let body = serde_json::to_vec_pretty(prefs).map_err(std::io::Error::other)?;
    std::fs::write(path(data_dir), body)
}

//! "Open at login": an entry in the desktop's autostart list (an XDG
//! `~/.config/autostart/Countersign.desktop` on Linux, a LaunchAgent on
//! macOS, a Run key on Windows), written and removed by
//! `tauri-plugin-autostart`. Off until the user turns it on; nothing is
//! written at start. The entry starts the app with [`ARG`], and an app
//! started that way keeps its window hidden: it waits in the tray.

use tauri::plugin::TauriPlugin;
use tauri::{AppHandle, Runtime};
use tauri_plugin_autostart::ManagerExt;

/// The argument the autostart entry passes.
pub const ARG: &str = "--autostart";

pub fn plugin<R: Runtime>() -> TauriPlugin<R> {
    tauri_plugin_autostart::Builder::new().arg(ARG).build()
}

/// True when the session started this process through the entry.
pub fn started_at_login() -> bool {
    std::env::args().skip(1).any(|a| a == ARG)
}

/// Whether the entry is in place now (the user may have removed it by hand).
pub fn is_on<R: Runtime>(app: &AppHandle<R>) -> Result<bool, String> {
    app.autolaunch().is_enabled().map_err(|e| e.to_string())
}

/// Writes or removes the entry; returns the state it is in afterwards.
pub fn set<R: Runtime>(app: &AppHandle<R>, on: bool) -> Result<bool, String> {
    let manager = app.autolaunch();
    if on {
        manager.enable()
    } else {
        manager.disable()
    }
    .map_err(|e| e.to_string())?;
    is_on(app)
}

//! The tray icon: the pending count, and open / pause notifications / quit.
//! Closing the window only hides it; the tray keeps the app running.

use crate::state::{lock, AppState};
use std::sync::Arc;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{App, AppHandle, Manager, Wry};

const TRAY_ID: &str = "main";

/// The "Pause notifications" item, kept to mirror the preference.
struct PauseItem(CheckMenuItem<Wry>);

pub fn build(app: &App, state: &Arc<AppState>) -> tauri::Result<()> {
    let open = MenuItem::with_id(app, "open", "Open Countersign", true, None::<&str>)?;
    let pause = CheckMenuItem::with_id(
        app,
        "pause",
        "Pause notifications",
        true,
        state.prefs().dnd,
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, "quit", "Quit Countersign", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[&open, &pause, &PredefinedMenuItem::separator(app)?, &quit],
    )?;
    app.manage(PauseItem(pause));
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(include_bytes!("../../icons/tray.png"))?)
        .tooltip("Countersign")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => show_main(app),
            "pause" => toggle_pause(app),
            "quit" => app.exit(0),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                show_main(tray.app_handle());
            }
        })
        .build(app)?;
    Ok(())
}

/// Shows the pending count on the tray (tooltip and label).
/// `snoozed` of them are out of the inbox list for now.
pub fn set_count(app: &AppHandle, state: &AppState, pending: i64, snoozed: i64) {
    let mut text = match pending {
        0 => "Countersign — nothing pending".to_owned(),
        1 => "Countersign — 1 pending request".to_owned(),
        n => format!("Countersign — {n} pending requests"),
    };
    if snoozed > 0 {
        text.push_str(&format!(" ({snoozed} snoozed)"));
    }
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let _ = tray.set_tooltip(Some(&text));
        let _ = tray.set_title(Some(if pending == 0 {
            String::new()
        } else {
            pending.to_string()
        }));
    }
    *lock(&state.tray_text) = text;
}

/// Brings the main window back and focuses it.
pub fn show_main(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}

fn toggle_pause(app: &AppHandle) {
    let state = app.state::<Arc<AppState>>();
    let mut prefs = state.prefs();
    prefs.dnd = !prefs.dnd;
    if let Err(e) = state.set_prefs(prefs.clone()) {
        tracing::warn!("could not save preferences: {e}");
    }
    sync_pause_item(app, prefs.dnd);
    crate::events::refresh(app, &state);
}

/// Keeps the menu's check mark in step with the preference.
pub fn sync_pause_item(app: &AppHandle, dnd: bool) {
    if let Some(item) = app.try_state::<PauseItem>() {
        let _ = item.0.set_checked(dnd);
    }
}

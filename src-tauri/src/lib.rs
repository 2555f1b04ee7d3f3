//! The Countersign desktop app: a thin Tauri shell over `countersign-inbox`.
//!
//! `setup` builds the state once (data dir, store, engine, notifier, tray)
//! and starts syncing; commands delegate to the inbox; core events reach the
//! UI batched (see [`events`]). Closing the window keeps the app in the tray;
//! started by the session's autostart entry (see [`autostart`]) it opens
//! there, with its window hidden.

mod autostart;
mod commands;
mod error;
mod events;
mod notify;
mod prefs;
mod state;
mod tray;

use countersign_inbox::{resolve_data_dir, Inbox};
use countersign_model::SystemClock;
use state::AppState;
use std::sync::Arc;
use tauri::{Emitter, Manager, WindowEvent};

pub fn run() {
    // Without a display GTK panics deep inside the event loop; say it plainly.
    #[cfg(target_os = "linux")]
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        eprintln!(
            "error: no display: Countersign's window needs a desktop session (DISPLAY or WAYLAND_DISPLAY); \
             the `countersign` CLI works without one"
        );
        std::process::exit(1);
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();

    let result = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            tray::show_main(app)
        }))
        .plugin(autostart::plugin())
        .setup(|app| {
            if autostart::started_at_login() {
                // Started with the session: wait in the tray, not in the way.
                if let Some(w) = app.get_webview_window("main") {
                    let _ = w.hide();
                }
            }
            let data_dir = resolve_data_dir(None)?;
            let inbox = Arc::new(Inbox::open(&data_dir, Arc::new(SystemClock))?);
            let clicked = app.handle().clone();
            let deciding = app.handle().clone();
            let notifier = notify::Notifier::start(notify::Handlers {
                on_click: Arc::new(move |id| {
                    tray::show_main(&clicked);
                    let _ = clicked.emit(events::OPEN_REQUEST, id);
                }),
                on_decide: Arc::new(move |id, outcome| {
                    let app = deciding.clone();
                    tauri::async_runtime::spawn(async move {
                        if let Some(state) = app.try_state::<Arc<AppState>>() {
                            commands::decide_from_notification(&app, &state, id, outcome).await;
                        }
                    });
                }),
            });
            let state = Arc::new(AppState::new(
                inbox,
                prefs::Prefs::load(&data_dir),
                notifier,
            ));
            app.manage(state.clone());
            if let Err(e) = tray::build(app, &state) {
                tracing::warn!("no tray icon: {e}");
            }
            events::spawn(app.handle().clone(), state.clone());
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                match state.inbox.run().await {
                    Ok(running) => *state.running.lock().await = running,
                    Err(e) => tracing::error!("could not start syncing: {e}"),
                }
                events::refresh(&handle, &state);
            });
            Ok(())
        })
        .on_window_event(|window, event| {
            if let WindowEvent::CloseRequested { api, .. } = event {
                // Keep running in the tray; "Quit" in its menu ends the app.
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::pending,
            commands::detail,
            commands::decide,
            commands::history_page,
            commands::activity,
            commands::mark_activity_read,
            commands::accounts,
            commands::save_account,
            commands::remove_account,
            commands::retry_account,
            commands::prefs,
            commands::snooze,
            commands::set_prefs,
            commands::status,
            commands::about,
            commands::set_open_at_login,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("error: Countersign could not start: {e}");
        std::process::exit(1);
    }
}

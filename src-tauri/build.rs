fn main() {
    // Declaring the app's commands makes each one a permission that a
    // capability must grant; capabilities/default.json grants only what the
    // UI uses.
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "pending",
            "detail",
            "decide",
            "history_page",
            "activity",
            "mark_activity_read",
            "accounts",
            "save_account",
            "remove_account",
            "retry_account",
            "prefs",
            "set_prefs",
            "snooze",
            "status",
            "about",
            "set_open_at_login",
        ]),
    ))
    .expect("tauri build step");
}

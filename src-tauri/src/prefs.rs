//! The app's preferences are the notification switches it shares with the
//! CLI, saved in the data dir (`countersign_inbox::notifications`).

pub use countersign_inbox::NotificationPrefs as Prefs;

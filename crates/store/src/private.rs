//! Files and directories only the user may read: the data dir is 0700, the
//! store, its `-wal`/`-shm` files and exports are 0600, whatever the umask.
//! One found looser (made by an older version, or by hand) is tightened,
//! with one warning naming it and its old mode. Elsewhere than Unix these
//! only create: the data dir is then in the user's own profile.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
#[cfg(unix)]
use std::path::PathBuf;

/// The mode of a private directory.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
/// The mode of a private file.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and its parents) 0700, or tightens an existing one that
/// others may enter or read, saying so in one warning when it held files.
pub fn dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    let existed = dir.is_dir();
    builder.create(dir)?;
    #[cfg(unix)]
    {
        // An empty dir (just made with `mkdir` or `mktemp -d`) exposed
        // nothing: it is made private without a word.
        let has_data = existed && std::fs::read_dir(dir)?.next().is_some();
        if has_data {
            if let Some(old) = tighten(dir, DIR_MODE)? {
                tracing::warn!(
                    "tightened the data dir {} from {old:04o} to {DIR_MODE:04o}: only you may enter it",
                    dir.display()
                );
            }
        } else {
            // The umask may have taken bits the owner needs.
            set_mode(dir, DIR_MODE)?;
        }
    }
    #[cfg(not(unix))]
    let _ = existed;
    Ok(())
}

/// Creates (truncating) a file only the user may read, for output the user
/// asked for (an export). An existing file keeps its mode: the user chose it.
pub fn create_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    let existed = path.exists();
    let file = options.open(path)?;
    #[cfg(unix)]
    if !existed {
        use std::os::unix::fs::PermissionsExt;
        // The umask may have taken bits the owner needs.
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    #[cfg(not(unix))]
    let _ = existed;
    Ok(file)
}

/// The store's `-wal` and `-shm` files, beside it.
#[cfg(unix)]
fn companions(db: &Path) -> [PathBuf; 2] {
    ["-wal", "-shm"].map(|suffix| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    })
}

/// Makes the store file 0600 before SQLite opens it (SQLite would create it
/// 0644 less the umask, and gives its `-wal`/`-shm` files the store's mode),
/// and tightens looser `-wal`/`-shm` files left from before. One warning
/// names whatever was tightened.
pub(crate) fn store_files(db: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
        let mut tightened = Vec::new();
        match options.open(db) {
            // New and empty: SQLite writes the header. Exactly 0600, whatever
            // the umask.
            Ok(_) => set_mode(db, FILE_MODE)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if let Some(old) = tighten(db, FILE_MODE)? {
                    tightened.push((db.to_path_buf(), old));
                }
            }
            Err(e) => return Err(e),
        }
        tightened.extend(companion_files(db)?);
        warn_tightened(&tightened);
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

/// Tightens the store's `-wal`/`-shm` files once SQLite has made them; they
/// take the store's mode, so this only finds ones another process made
/// before the store was tightened.
pub(crate) fn store_companions(db: &Path) -> io::Result<()> {
    #[cfg(unix)]
    warn_tightened(&companion_files(db)?);
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

#[cfg(unix)]
fn companion_files(db: &Path) -> io::Result<Vec<(PathBuf, u32)>> {
    let mut tightened = Vec::new();
    for path in companions(db) {
        match tighten(&path, FILE_MODE) {
            Ok(Some(old)) => tightened.push((path, old)),
            Ok(None) => {}
            // Removed meanwhile by the last connection closing: nothing to do.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(tightened)
}

#[cfg(unix)]
fn warn_tightened(tightened: &[(PathBuf, u32)]) {
    if tightened.is_empty() {
        return;
    }
    let list: Vec<String> = tightened
        .iter()
        .map(|(path, old)| format!("{} (was {old:04o})", path.display()))
        .collect();
    tracing::warn!(
        "tightened to {FILE_MODE:04o}, so only you may read them: {}",
        list.join(", ")
    );
}

/// Sets `mode` on `path` when group or others have any access to it;
/// returns the old mode when it did.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let old = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if old & 0o077 == 0 {
        return Ok(None);
    }
    set_mode(path, mode)?;
    Ok(Some(old))
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

//! Secrets a service generates on its first start (signing keys, the API-key master key) and
//! reuses afterwards. Readable only by the owner (mode 0600), and never seen half-written: the
//! bytes go to a temporary file that is synced and then linked into place, so a crash leaves
//! either no secret (the next start makes one) or the whole of it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Reads the secret at `path`, or creates it with `generate` when the file does not exist.
/// When two processes create it at once, both end up with the one that was linked first.
pub fn load_or_create(path: &Path, generate: impl FnOnce() -> Vec<u8>) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let bytes = generate();
    match write_new(path, &bytes) {
        Ok(()) => Ok(bytes),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path),
        Err(e) => Err(e),
    }
}

/// Writes a new secret file at `path` (mode 0600), failing with `AlreadyExists` when there is
/// one already. The file appears complete or not at all.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = write_temp(path, bytes)?;
    // A hard link publishes the synced file atomically and, unlike rename, never replaces a
    // file another process published a moment ago.
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    linked?;
    sync_parent(path)
}

/// Writes `bytes` to `path` (mode 0600), replacing what is there. Readers see the old file or
/// the new one, never a mixture.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = write_temp(path, bytes)?;
    if let Err(e) = std::fs::rename(&temp, path) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    sync_parent(path)
}

/// A synced, owner-only temporary file next to `path` holding `bytes`.
fn write_temp(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        std::fs::create_dir_all(parent)?;
    }
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a secret file needs a file name"))?;
    // Unique per process and call, so concurrent writers never share a temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".tmp-{}-{serial}", std::process::id()));
    let temp = path.with_file_name(temp_name);

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    match written {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Makes the new directory entry itself durable (on Unix a rename or link is only durable once
/// its directory is synced).
fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path)
                .unwrap_or_else(|e| panic!("{e}"))
                .permissions()
                .mode()
                & 0o777
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            0o600
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|e| {
                e.unwrap_or_else(|e| panic!("{e}"))
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn creates_once_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("keys/secret.key");
        let first = load_or_create(&path, || vec![1, 2, 3]).unwrap_or_else(|e| panic!("{e}"));
        let second = load_or_create(&path, || vec![9]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, vec![1, 2, 3]);
        assert_eq!(second, first);
        assert_eq!(mode(&path), 0o600);
        // No temporary file is left behind.
        assert_eq!(entries(&dir.path().join("keys")), vec!["secret.key".to_string()]);
    }

    /// What a crash mid-write leaves (a partial temporary file) does not stop the next start,
    /// and the secret's own path never holds a partial file.
    #[test]
    fn a_crash_while_writing_leaves_nothing_that_blocks_the_next_start() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("secret.key");
        std::fs::write(dir.path().join(".secret.key.tmp-1-0"), b"par").unwrap_or_else(|e| panic!("{e}"));
        let secret = load_or_create(&path, || vec![7; 32]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(secret, vec![7; 32]);
        assert_eq!(std::fs::read(&path).unwrap_or_default(), vec![7; 32]);
    }

    #[test]
    fn write_new_refuses_to_replace_and_replace_does() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("secret.key");
        write_new(&path, b"first").unwrap_or_else(|e| panic!("{e}"));
        let again = write_new(&path, b"second").map_err(|e| e.kind());
        assert_eq!(again, Err(std::io::ErrorKind::AlreadyExists));
        assert_eq!(std::fs::read(&path).unwrap_or_default(), b"first");
        replace(&path, b"third").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&path).unwrap_or_default(), b"third");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(entries(dir.path()), vec!["secret.key".to_string()]);
    }

    /// Processes that start together all read the one complete secret: none sees it
    /// half-written (with a file created first and written after, a loser could read it empty).
    #[test]
    fn concurrent_creators_agree_on_one_complete_secret() {
        for _ in 0..40 {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let path = dir.path().join("secret.key");
            let barrier = std::sync::Barrier::new(8);
            let secrets: Vec<Vec<u8>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8u8)
                    .map(|i| {
                        let (path, barrier) = (&path, &barrier);
                        scope.spawn(move || {
                            barrier.wait();
                            load_or_create(path, || vec![i; 4096]).unwrap_or_default()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
            });
            assert!(
                secrets.iter().all(|s| s.len() == 4096 && *s == secrets[0]),
                "{:?}",
                secrets.iter().map(Vec::len).collect::<Vec<_>>()
            );
        }
    }
}

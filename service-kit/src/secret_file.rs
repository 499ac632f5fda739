//! Secrets a service generates on its first start (signing keys, the API-key master key) and
//! reuses afterwards. Written once, readable only by the owner (mode 0600).

use std::io::Write;
use std::path::Path;

/// Reads the secret at `path`, or creates it with `generate` when the file does not exist.
pub fn load_or_create(path: &Path, generate: impl FnOnce() -> Vec<u8>) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let bytes = generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(&bytes)?;
            file.sync_all()?;
            Ok(bytes)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("keys/secret.key");
        let first = load_or_create(&path, || vec![1, 2, 3]).unwrap_or_else(|e| panic!("{e}"));
        let second = load_or_create(&path, || vec![9]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, vec![1, 2, 3]);
        assert_eq!(second, first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{e}"))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

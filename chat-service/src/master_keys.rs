//! Where the master keys that encrypt API keys come from: given in configuration (a list of
//! `version:base64` entries, so a new key can be added and the old one kept for reading while
//! rows are re-encrypted), or else one key generated on the first local start into
//! `data_dir/chat-service/master-key` (mode 0600) and reused afterwards.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use parley_service_kit::secret_file;

use crate::Error;
use crate::key_cipher::{MASTER_KEY_LEN, MasterKey};

/// The generated key's file under the data directory.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("chat-service").join("master-key")
}

/// Parses `version:base64` entries separated by commas or newlines, e.g.
/// `1:q83v…=,2:Zm9v…=`. Versions must be distinct and positive, keys 32 bytes.
pub fn parse(text: &str) -> Result<Vec<MasterKey>, String> {
    let mut keys: Vec<MasterKey> = Vec::new();
    for entry in text.split([',', '\n']).map(str::trim).filter(|e| !e.is_empty()) {
        let (version, encoded) = entry
            .split_once(':')
            .ok_or_else(|| "each master key must be written as version:base64".to_owned())?;
        let version: i64 = version
            .trim()
            .parse()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("master key version {version:?} is not a positive integer"))?;
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| format!("master key version {version} is not valid base64"))?;
        let key: [u8; MASTER_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| format!("master key version {version} must be {MASTER_KEY_LEN} bytes"))?;
        if keys.iter().any(|k| k.version == version) {
            return Err(format!("master key version {version} is given twice"));
        }
        keys.push(MasterKey { version, key });
    }
    if keys.is_empty() {
        return Err("no master key given".to_owned());
    }
    Ok(keys)
}

/// A fresh random master key in the file format (`1:base64`).
pub fn generate() -> String {
    let key: [u8; MASTER_KEY_LEN] = rand::random();
    format!("1:{}\n", STANDARD.encode(key))
}

/// The keys in the file at `path`, created with one fresh key if missing.
pub fn load_or_create(path: &Path) -> Result<Vec<MasterKey>, Error> {
    let fail = |reason: String| Error::MasterKey {
        path: path.display().to_string(),
        reason,
    };
    let bytes = secret_file::load_or_create(path, || generate().into_bytes()).map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".to_owned()))?;
    parse(&text).map_err(fail)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        let a = STANDARD.encode([1u8; 32]);
        let b = STANDARD.encode([2u8; 32]);
        let keys = parse(&format!("1:{a}, 2:{b}\n")).unwrap();
        assert_eq!(keys.iter().map(|k| k.version).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(keys[1].key, [2u8; 32]);
        assert!(parse("").is_err());
        assert!(parse(&format!("0:{a}")).is_err());
        assert!(parse(&format!("1:{a},1:{b}")).is_err());
        assert!(parse("1:c2hvcnQ=").unwrap_err().contains("32 bytes"));
        assert!(parse(&a).is_err());
    }

    #[test]
    fn generated_once_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(dir.path());
        let first = load_or_create(&path).unwrap();
        let second = load_or_create(&path).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].version, 1);
        assert_eq!(first[0].key, second[0].key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

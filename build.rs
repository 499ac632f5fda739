//! Embeds the built web UI (`web/dist`, precompressed copies included) into the `parley`
//! binary as a static table of files, so the binary serves the UI wherever it runs.
//!
//! A fresh clone has no `web/dist` yet: the directory is created empty (it is git-ignored) so
//! the build works, and the binary then says at start-up that it has no UI. `make run` and
//! `make test-rust` build the UI first; cargo rebuilds when anything under `web/dist` changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let dist = manifest_dir.join("web").join("dist");
    std::fs::create_dir_all(&dist)?;
    // A directory is scanned as a whole: any file added, changed or removed reruns this.
    println!("cargo:rerun-if-changed={}", dist.display());

    let mut files = Vec::new();
    collect(&dist, &dist, &mut files)?;
    files.sort();
    let mut table = String::from("&[\n");
    for (name, path) in &files {
        writeln!(
            table,
            "    gateway::EmbeddedFile {{ path: {name:?}, contents: include_bytes!({:?}) }},",
            path.display().to_string()
        )?;
    }
    table.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("embedded_ui.rs");
    std::fs::write(out, table)?;
    Ok(())
}

/// Every file under `dir`, as (path relative to `root` with `/` separators, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, files)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.push((name, path));
        }
    }
    Ok(())
}

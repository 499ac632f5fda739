//! The `PARLEY_…` environment variables the deployment files set for a service, to check that
//! its binary reads every one of them: an unknown name is ignored silently (clap reads only
//! the names it declares), so a typo or a renamed flag in a manifest would otherwise leave a
//! replica running with a default nobody chose.
//!
//! Read as text, not YAML: the files are written by hand in a small, regular shape, and a
//! name is what we are after, not the structure around it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's `deploy/` directory.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every `PARLEY_…` name the deployment files give `service`, with the file it is set in:
/// `k8s/<service>.yaml` (and the literals of the ConfigMaps it takes with `envFrom`, from
/// `k8s/kustomization.yaml`) and the service's section of `compose.yaml`.
pub fn names_set_for(service: &str) -> Vec<(String, String)> {
    let dir = deploy_dir();
    let mut found = Vec::new();
    let manifest = read(&dir.join(format!("k8s/{service}.yaml")));
    for name in parley_names(&manifest) {
        found.push((format!("k8s/{service}.yaml"), name));
    }
    let kustomization = read(&dir.join("k8s/kustomization.yaml"));
    for config_map in config_map_refs(&manifest) {
        for name in config_map_literals(&kustomization, &config_map) {
            found.push((format!("k8s/kustomization.yaml ({config_map})"), name));
        }
    }
    let compose = read(&dir.join("compose.yaml"));
    let section =
        compose_service(&compose, service).unwrap_or_else(|| panic!("compose.yaml has no service {service:?}"));
    for name in parley_names(&section) {
        found.push(("compose.yaml".to_owned(), name));
    }
    found
}

/// Fails naming each variable the deployment files set for `service` that `binary --help`
/// does not list as one it reads (clap prints `[env: NAME=…]` under each flag).
pub fn assert_binary_reads_all(binary: &str, service: &str) {
    let output = Command::new(binary)
        .arg("--help")
        .env_clear()
        .output()
        .expect("run --help");
    assert!(output.status.success(), "{binary} --help failed");
    let help = String::from_utf8_lossy(&output.stdout);
    let set = names_set_for(service);
    assert!(
        !set.is_empty(),
        "no PARLEY_ variables found for {service}: is the parser right?"
    );
    let unread: Vec<String> = set
        .iter()
        .filter(|(_, name)| !help.contains(&format!("[env: {name}=")))
        .map(|(file, name)| format!("{name} (in {file})"))
        .collect();
    assert!(
        unread.is_empty(),
        "{service} reads no such variables: {unread:?}\n--help:\n{help}"
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `PARLEY_…` names set in `text`: `name: PARLEY_X` (a Kubernetes env entry), `PARLEY_X:`
/// (a compose map entry) and `PARLEY_X=` (a ConfigMap literal). Comments are skipped.
fn parley_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("PARLEY_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let after = tail[end..].trim_start();
            let before = rest[..at].trim_end();
            let is_set = after.starts_with(':') || after.starts_with('=') || before.ends_with("name:");
            if is_set && !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
            rest = &tail[end..];
        }
    }
    names
}

/// Names of the ConfigMaps a manifest takes whole (`configMapRef: { name: X }`).
fn config_map_refs(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .filter_map(|line| {
            let after = line.split("configMapRef:").nth(1)?;
            let name = after.split("name:").nth(1)?;
            Some(name.trim().trim_end_matches('}').trim().trim_matches('"').to_owned())
        })
        .collect()
}

/// The `PARLEY_…` literals of one `configMapGenerator` entry of a kustomization.
fn config_map_literals(kustomization: &str, config_map: &str) -> Vec<String> {
    let mut lines = kustomization.lines().skip_while(|l| {
        !l.trim_start()
            .trim_start_matches("- ")
            .starts_with(&format!("name: {config_map}"))
    });
    let Some(_) = lines.next() else { return Vec::new() };
    let entry: Vec<&str> = lines
        .take_while(|l| !l.trim_start().starts_with("- name:") && !l.starts_with(|c: char| !c.is_whitespace()))
        .collect();
    parley_names(&entry.join("\n"))
}

/// The lines of one service under `services:` in a compose file (two-space indented keys).
fn compose_service(compose: &str, service: &str) -> Option<String> {
    let header = format!("  {service}:");
    let mut lines = compose.lines().skip_while(|l| l.trim_end() != header);
    lines.next()?;
    let body: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.starts_with("    ") || l.trim_start().starts_with('#'))
        .collect();
    Some(body.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_names_where_they_are_set_and_not_where_they_are_mentioned() {
        let text = "# PARLEY_IN_A_COMMENT: no\n- { name: PARLEY_A, value: \"1\" }\n  PARLEY_B: x\n  - PARLEY_C=\nsee PARLEY_D for more\n";
        assert_eq!(parley_names(text), ["PARLEY_A", "PARLEY_B", "PARLEY_C"]);
    }

    #[test]
    fn reads_a_compose_section_and_a_config_map() {
        let compose =
            "services:\n  a:\n    environment:\n      PARLEY_X: 1\n  b:\n    environment:\n      PARLEY_Y: 2\n";
        assert_eq!(parley_names(&compose_service(compose, "a").unwrap()), ["PARLEY_X"]);
        let kustomization = "configMapGenerator:\n  - name: edge\n    literals:\n      - PARLEY_T=\n  - name: other\n    literals:\n      - PARLEY_U=\n";
        assert_eq!(config_map_literals(kustomization, "edge"), ["PARLEY_T"]);
        assert_eq!(
            config_map_refs("envFrom:\n  - configMapRef: { name: edge }\n"),
            ["edge"]
        );
    }

    #[test]
    fn every_service_has_variables_in_every_file() {
        for service in ["user-service", "chat-service", "llm-service", "gateway"] {
            let set = names_set_for(service);
            assert!(
                set.iter().any(|(file, _)| file.starts_with("k8s/")),
                "{service}: {set:?}"
            );
            assert!(set.iter().any(|(file, _)| file == "compose.yaml"), "{service}: {set:?}");
        }
        assert!(
            names_set_for("gateway")
                .iter()
                .any(|(_, n)| n == "PARLEY_TRUSTED_PROXIES")
        );
    }
}

//! The app's static files: the built front end (`handlers/web`: `npm ci && npm run build` writes
//! `dist/`), read once at start and served from memory under `/app/`. Without a build, a page that
//! says how to make one stands in for the app.

use std::collections::HashMap;
use std::path::Path;

/// Largest file read (the bundles are ~120 KiB).
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// The page served when no front end was built.
const PLACEHOLDER: &str = include_str!("placeholder.html");

/// File name → (content type, bytes).
#[derive(Debug, Clone)]
pub struct Assets {
    files: HashMap<String, (&'static str, Vec<u8>)>,
    built: bool,
}

fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => return None,
    })
}

impl Assets {
    /// The files of `dir` (not its subdirectories) whose type is known; `index.html` is required.
    pub fn load(dir: &Path) -> Result<Assets, String> {
        let at = |e: std::io::Error| format!("{}: {e}", dir.display());
        let mut files = HashMap::new();
        for entry in std::fs::read_dir(dir).map_err(at)? {
            let entry = entry.map_err(at)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata().map_err(at)?;
            let Some(kind) = content_type(&name).filter(|_| meta.is_file()) else {
                continue;
            };
            if meta.len() > MAX_FILE {
                return Err(format!(
                    "{}: larger than {MAX_FILE} bytes",
                    entry.path().display()
                ));
            }
            let bytes = std::fs::read(entry.path()).map_err(at)?;
            files.insert(name, (kind, bytes));
        }
        if !files.contains_key("index.html") {
            return Err(format!(
                "{}: no index.html (build the front end: npm --prefix handlers/web ci && npm --prefix handlers/web run build)",
                dir.display()
            ));
        }
        Ok(Assets { files, built: true })
    }

    /// The build in `explicit` (an error when it is not one), else the one in `default` when
    /// there is one, else the placeholder ([`Assets::is_built`] says which).
    pub fn locate(explicit: Option<&Path>, default: &Path) -> Result<Assets, String> {
        match explicit {
            Some(dir) => Assets::load(dir),
            None if default.join("index.html").is_file() => Assets::load(default),
            None => Ok(Assets::placeholder()),
        }
    }

    /// Only the placeholder page.
    pub fn placeholder() -> Assets {
        let files = HashMap::from([(
            "index.html".to_string(),
            ("text/html; charset=utf-8", PLACEHOLDER.as_bytes().to_vec()),
        )]);
        Assets {
            files,
            built: false,
        }
    }

    /// Whether these are a built front end (not the placeholder).
    pub fn is_built(&self) -> bool {
        self.built
    }

    /// A file by name: (content type, bytes).
    pub fn get(&self, name: &str) -> Option<(&'static str, &[u8])> {
        self.files.get(name).map(|(t, b)| (*t, b.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_needs_an_index_and_serves_only_known_types() {
        let dir = std::env::temp_dir().join(format!("assets-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("app.js"), "x").unwrap();
        std::fs::write(dir.join("secret.env"), "x").unwrap();
        assert!(Assets::load(&dir).unwrap_err().contains("no index.html"));
        std::fs::write(dir.join("index.html"), "<p>").unwrap();
        let assets = Assets::load(&dir).unwrap();
        assert!(assets.is_built());
        assert_eq!(
            assets.get("app.js").unwrap().0,
            "text/javascript; charset=utf-8"
        );
        assert!(assets.get("secret.env").is_none() && assets.get("sub").is_none());
        assert!(!Assets::placeholder().is_built());
        let nowhere = dir.join("nowhere");
        assert!(Assets::locate(None, &dir).unwrap().is_built());
        assert!(!Assets::locate(None, &nowhere).unwrap().is_built());
        assert!(Assets::locate(Some(&nowhere), &dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

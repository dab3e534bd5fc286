//! Mapping a request path to a file inside a mount, so that no request can name a file outside it.
//!
//! Each segment is percent-decoded on its own and refused when it could change the directory it
//! names: `.` and `..`, an encoded `/` or `\`, NUL. The file found is canonicalized (symlinks
//! followed) and must still lie under the mount's own canonical directory.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A regular file found for a request, with its metadata.
pub struct Found {
    pub path: PathBuf,
    pub metadata: Metadata,
}

/// The file `rest` (the raw, still percent-encoded path after the mount's route) names under `root`
/// (a canonical directory); a directory gives its `dir_to_file` when set. None: answer 404.
pub fn resolve(root: &Path, rest: &str, dir_to_file: Option<&str>) -> Option<Found> {
    let mut candidate = root.to_path_buf();
    for segment in rest.split('/').filter(|segment| !segment.is_empty()) {
        let decoded: Vec<u8> = percent_encoding::percent_decode_str(segment).collect();
        if !safe_segment(&decoded) {
            return None;
        }
        candidate.push(OsStr::from_bytes(&decoded));
    }
    let found = inside(root, &candidate)?;
    if found.metadata.is_file() {
        return Some(found);
    }
    if found.metadata.is_dir() {
        let index = dir_to_file?;
        let found = inside(root, &found.path.join(index))?;
        return found.metadata.is_file().then_some(found);
    }
    None
}

/// `path` canonicalized, when it exists and lies under `root`.
pub fn inside(root: &Path, path: &Path) -> Option<Found> {
    let canonical = std::fs::canonicalize(path).ok()?;
    if !canonical.starts_with(root) {
        return None;
    }
    let metadata = std::fs::metadata(&canonical).ok()?;
    Some(Found { path: canonical, metadata })
}

fn safe_segment(segment: &[u8]) -> bool {
    !matches!(segment, b"." | b"..") && !segment.iter().any(|byte| matches!(byte, b'/' | b'\\' | 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Tree {
        base: PathBuf,
        root: PathBuf,
    }

    impl Tree {
        fn new(name: &str) -> Self {
            let base = std::env::temp_dir().join(format!("granian-statics-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&base);
            let root = base.join("mount");
            std::fs::create_dir_all(root.join("docs")).unwrap();
            std::fs::write(root.join("app.css"), "body{}").unwrap();
            std::fs::write(root.join("docs/index.html"), "<h1>").unwrap();
            std::fs::write(root.join("a b.txt"), "space").unwrap();
            std::fs::write(base.join("secret.txt"), "secret").unwrap();
            symlink(base.join("secret.txt"), root.join("escape.txt")).unwrap();
            symlink(root.join("app.css"), root.join("alias.css")).unwrap();
            let root = std::fs::canonicalize(root).unwrap();
            Self { base, root }
        }

        fn name(&self, rest: &str, index: Option<&str>) -> Option<String> {
            resolve(&self.root, rest, index)
                .map(|found| found.path.strip_prefix(&self.root).unwrap().to_string_lossy().into_owned())
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    #[test]
    fn files_inside_the_mount_are_found() {
        let tree = Tree::new("inside");
        assert_eq!(tree.name("/app.css", None).as_deref(), Some("app.css"));
        assert_eq!(tree.name("//app.css", None).as_deref(), Some("app.css"));
        assert_eq!(tree.name("/a%20b.txt", None).as_deref(), Some("a b.txt"));
        assert_eq!(tree.name("/alias.css", None).as_deref(), Some("app.css"));
        assert_eq!(tree.name("/docs/", Some("index.html")).as_deref(), Some("docs/index.html"));
        assert_eq!(tree.name("/docs", None), None);
        assert_eq!(tree.name("", None), None);
        assert_eq!(tree.name("/missing.css", None), None);
    }

    #[test]
    fn nothing_outside_the_mount_is_reachable() {
        let tree = Tree::new("outside");
        for rest in [
            "/../secret.txt",
            "/docs/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt",
            "/..%2fsecret.txt",
            "/..%2Fsecret.txt",
            "/..%5csecret.txt",
            "/..\\secret.txt",
            "/app.css%00.png",
            "/escape.txt",
            "/%2fetc%2fpasswd",
            "//etc/passwd",
            "/./app.css",
            "/%252e%252e/secret.txt",
        ] {
            assert_eq!(tree.name(rest, Some("index.html")), None, "{rest}");
        }
        assert_eq!(tree.name("/docs/", Some("../../secret.txt")), None);
    }

    /// Property test: no request path, however encoded, resolves outside the mount.
    #[test]
    fn generated_paths_never_leave_the_mount() {
        use proptest::prelude::*;
        let tree = Tree::new("properties");
        let segment = prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just("%2e%2e".to_string()),
            Just("%2E.".to_string()),
            Just("..%2f".to_string()),
            Just("%2f".to_string()),
            Just("%5c..".to_string()),
            Just("%00".to_string()),
            Just("docs".to_string()),
            Just("escape.txt".to_string()),
            Just("secret.txt".to_string()),
            Just("app.css".to_string()),
            Just("".to_string()),
            "[ -~]{0,6}",
        ];
        let rest = proptest::collection::vec(segment, 0..6).prop_map(|segments| format!("/{}", segments.join("/")));
        proptest!(|(rest in rest, index in prop_oneof![Just(None), Just(Some("index.html")), Just(Some("../secret.txt"))])| {
            if let Some(found) = resolve(&tree.root, &rest, index) {
                prop_assert!(found.path.starts_with(&tree.root), "{rest} -> {}", found.path.display());
                prop_assert!(found.metadata.is_file());
            }
        });
    }
}

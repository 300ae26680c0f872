//! Directory grants as a store keeps them, and the part of them a guest may
//! hand on to an interpreter it creates: a directory at or below one of its
//! own grants, never writable where that grant is read-only.
//!
//! The guest names the directory by its own guest path; that path is
//! hostile. It must be absolute and free of `..`; the longest grant whose
//! guest path holds it is the one it comes from (as WASI resolves paths).
//! The host directory below that grant is opened (following symlinks), and
//! the directory actually opened must still be below the grant's canonical
//! host directory: a symlink out of the grant is refused. The child's WASI
//! context then opens that same open directory (`/proc/self/fd/N` on
//! Linux), so a rename or a symlink made after the check cannot change
//! what the child gets.

use std::fs::File;
use std::path::PathBuf;

/// The most directories one child may be given.
pub(crate) const MAX_CHILD_DIRS: usize = 64;

/// One directory grant of an interpreter.
#[derive(Clone, Debug)]
pub(crate) struct DirGrant {
    /// The host directory, canonical.
    pub(crate) host: PathBuf,
    /// Where the guest sees it.
    pub(crate) guest: String,
    pub(crate) read_only: bool,
}

/// Why a guest may not hand a directory on to its child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DirRefusal {
    /// Not an absolute path free of `..`, or no grant of the creator holds it.
    NotGranted,
    /// Writable asked for below a read-only grant.
    ReadOnly,
    /// It leaves its grant through a symlink, or is not a directory.
    Escapes,
}

/// A directory a child is given, open since it was checked.
#[derive(Debug)]
pub(crate) struct ChildDir {
    dir: File,
    /// The directory's canonical host path, found through `dir`.
    #[cfg(not(target_os = "linux"))]
    host: PathBuf,
    /// Where the child sees it: the guest path its creator named.
    pub(crate) guest: String,
    pub(crate) read_only: bool,
}

impl ChildDir {
    /// The host path that opens this very directory again.
    pub(crate) fn open_path(&self) -> PathBuf {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()))
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.host.clone()
        }
    }
}

/// The components of a guest path without `.`; `None` if it has `..`.
fn components(path: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// The host path of the directory `dir` has open.
fn opened_path(dir: &File, asked: &std::path::Path) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let _ = asked;
        std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        std::fs::canonicalize(asked).ok()
    }
}

/// The directory at guest path `path` of `grants`, for a child; read-only
/// when `read_only` is `Some(true)`, or (`None`) when its grant is.
pub(crate) fn child_dir(
    grants: &[DirGrant],
    path: &str,
    read_only: Option<bool>,
) -> Result<ChildDir, DirRefusal> {
    if !path.starts_with('/') {
        return Err(DirRefusal::NotGranted);
    }
    let want = components(path).ok_or(DirRefusal::NotGranted)?;
    let (grant, rest) = grants
        .iter()
        .filter_map(|g| {
            let base = components(&g.guest)?;
            want.starts_with(&base).then(|| (g, &want[base.len()..]))
        })
        .min_by_key(|(_, rest)| rest.len())
        .ok_or(DirRefusal::NotGranted)?;
    let read_only = read_only.unwrap_or(grant.read_only);
    if grant.read_only && !read_only {
        return Err(DirRefusal::ReadOnly);
    }
    let target = rest.iter().fold(grant.host.clone(), |p, c| p.join(c));
    let dir = File::open(&target).map_err(|_| DirRefusal::Escapes)?;
    let real = opened_path(&dir, &target).ok_or(DirRefusal::Escapes)?;
    let is_dir = dir.metadata().is_ok_and(|m| m.is_dir());
    if !is_dir || !real.starts_with(&grant.host) {
        return Err(DirRefusal::Escapes);
    }
    Ok(ChildDir {
        dir,
        #[cfg(not(target_os = "linux"))]
        host: real,
        guest: format!("/{}", want.join("/")),
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_are_split_and_dotdot_refused() {
        assert_eq!(components("/a/./b//c/"), Some(vec!["a", "b", "c"]));
        assert_eq!(components("/a/../b"), None);
        let g = [DirGrant {
            host: std::env::temp_dir(),
            guest: "/t".into(),
            read_only: true,
        }];
        assert_eq!(
            child_dir(&g, "t", None).unwrap_err(),
            DirRefusal::NotGranted
        );
        assert_eq!(
            child_dir(&g, "/t/../etc", None).unwrap_err(),
            DirRefusal::NotGranted
        );
        assert_eq!(
            child_dir(&g, "/u", None).unwrap_err(),
            DirRefusal::NotGranted
        );
        assert_eq!(
            child_dir(&g, "/t", Some(false)).unwrap_err(),
            DirRefusal::ReadOnly
        );
    }
}

//! Private, atomic file writes: temp file (mode 0600) + fsync + rename.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand::RngCore;
use rand::rngs::OsRng;

/// What to do if the target already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfExists {
    /// Replace it atomically.
    Replace,
    /// Leave it alone and report `false`.
    Keep,
}

/// Replaces `path` with `contents` so that readers see either the old file or the complete
/// new one (mode 0600, fsynced, then the directory fsynced; missing parents created 0700).
pub fn replace_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_private(path, contents, IfExists::Replace).map(|_| ())
}

/// Writes `contents` to `path` so that readers see either the old file or the
/// complete new one, never a partial file. The file gets mode 0600 and missing
/// parent directories are created with mode 0700. Returns whether `path` was
/// written (only `false` for [`IfExists::Keep`] when it already existed).
pub(crate) fn write_private(path: &Path, contents: &[u8], if_exists: IfExists) -> io::Result<bool> {
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir)?;
    let tmp = dir.join(format!(".{}.{:08x}.tmp", name.to_string_lossy(), OsRng.next_u32()));
    let mut file = create_private_file(&tmp)?;
    let result = write_and_place(&mut file, &tmp, path, contents, if_exists);
    drop(file);
    match result {
        Ok(true) => sync_dir(&dir).map(|()| true),
        other => {
            // Best effort: the temp file may already be gone (hard-link path).
            let _ = fs::remove_file(&tmp);
            other
        }
    }
}

fn write_and_place(file: &mut File, tmp: &Path, path: &Path, contents: &[u8], if_exists: IfExists) -> io::Result<bool> {
    file.write_all(contents)?;
    file.sync_all()?;
    match if_exists {
        IfExists::Replace => fs::rename(tmp, path)?,
        // A hard link fails if the target exists, so two processes creating
        // the file at once cannot overwrite each other.
        IfExists::Keep => match fs::hard_link(tmp, path) {
            Ok(()) => fs::remove_file(tmp)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            // File systems without hard links: check, then rename.
            Err(_) if !path.exists() => fs::rename(tmp, path)?,
            Err(_) => return Ok(false),
        },
    }
    Ok(true)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Makes the rename durable by syncing the directory entry.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn replace_writes_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(write_private(&path, b"one", IfExists::Replace).unwrap());
        assert!(write_private(&path, b"two", IfExists::Replace).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(names(dir.path()), vec!["f"]);
    }

    #[test]
    fn keep_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(write_private(&path, b"first", IfExists::Keep).unwrap());
        assert!(!write_private(&path, b"second", IfExists::Keep).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(names(dir.path()), vec!["f"]);
    }

    #[cfg(unix)]
    #[test]
    fn file_is_0600_and_new_dirs_are_0700() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/f");
        write_private(&path, b"x", IfExists::Replace).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
    }

    #[test]
    fn path_without_file_name_is_refused() {
        let err = write_private(Path::new("/"), b"x", IfExists::Replace).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}

//! Canonical lock keys: the one absolute path that every spelling of a data file resolves to.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys;

/// Symlink hops followed before giving up with `ELOOP`, as the kernel does (40 on Linux).
const MAX_SYMLINK_HOPS: usize = 40;

/// Resolves `path` to the absolute, symlink-free path of the file it names, whether or not that
/// file exists yet: the directory part goes through `realpath`, and a symlink in the last
/// component is followed (so a link to the data file and the file itself share one lock and one
/// sidecar). Errors name `path` as the caller spelled it, the way Node's fs errors do.
pub fn resolve(path: &str) -> Result<PathBuf> {
  let given = Path::new(path);
  if path.is_empty() {
    return Err(Error::InvalidArgValue {
      name: "path",
      reason: "must be a non-empty string. Received ''".into(),
    });
  }
  if path.as_bytes().contains(&0) {
    return Err(Error::InvalidArgValue {
      name: "path",
      reason: "must be a string without null bytes".into(),
    });
  }
  let mut current = if given.is_absolute() {
    given.to_path_buf()
  } else {
    std::env::current_dir()
      .map_err(|e| Error::io(e, "getcwd", given))?
      .join(given)
  };
  for _ in 0..MAX_SYMLINK_HOPS {
    let (dir, name) =
      split(&current).ok_or_else(|| Error::errno(sys::errno::EISDIR, "open", given))?;
    let dir = sys::simplify(fs::canonicalize(&dir).map_err(|e| Error::io(e, "realpath", given))?);
    let full = dir.join(&name);
    match fs::symlink_metadata(&full) {
      Ok(meta) if meta.file_type().is_symlink() => {
        let target = fs::read_link(&full).map_err(|e| Error::io(e, "readlink", given))?;
        current = dir.join(target);
      }
      Ok(_) => return Ok(full),
      Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(full),
      Err(e) => return Err(Error::io(e, "lstat", given)),
    }
  }
  Err(Error::errno(sys::errno::ELOOP, "open", given))
}

/// Splits an absolute path into its directory and final name; `None` when the final component
/// names a directory by construction (`/`, `C:\`, `..`, a trailing separator).
fn split(path: &Path) -> Option<(PathBuf, OsString)> {
  let last = *path.as_os_str().as_encoded_bytes().last()?;
  if std::path::is_separator(last as char) {
    return None;
  }
  let name = path.file_name()?;
  if name == ".." || name == "." {
    return None;
  }
  Some((path.parent()?.to_path_buf(), name.to_os_string()))
}

/// The advisory-lock sidecar of a resolved data path: `<path>.lock` beside it.
pub fn sidecar(data: &Path) -> PathBuf {
  let mut s = data.as_os_str().to_os_string();
  s.push(".lock");
  PathBuf::from(s)
}

#[cfg(test)]
mod tests {
  use super::*;
  #[cfg(unix)]
  use std::os::unix::fs::symlink;

  fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("index-lock-path-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    sys::simplify(fs::canonicalize(d).unwrap())
  }

  #[cfg(unix)]
  #[test]
  fn spellings_and_symlinks_resolve_to_one_key() {
    let d = tempdir("spell");
    fs::create_dir(d.join("real")).unwrap();
    symlink(d.join("real"), d.join("linkdir")).unwrap();
    fs::write(d.join("real/index.json"), "{}").unwrap();
    symlink("index.json", d.join("real/alias.json")).unwrap();
    let want = d.join("real/index.json");
    for spelling in [
      d.join("real/index.json"),
      d.join("real/../real/index.json"),
      d.join("linkdir/index.json"),
      d.join("linkdir/alias.json"),
      d.join("real/./alias.json"),
    ] {
      assert_eq!(
        resolve(spelling.to_str().unwrap()).unwrap(),
        want,
        "{spelling:?}"
      );
    }
    fs::remove_dir_all(d).unwrap();
  }

  #[cfg(unix)]
  #[test]
  fn missing_file_resolves_beside_its_real_directory() {
    let d = tempdir("missing");
    symlink(&d, d.join("self")).unwrap();
    let p = d.join("self/new.json");
    assert_eq!(resolve(p.to_str().unwrap()).unwrap(), d.join("new.json"));
    symlink("target.json", d.join("dangling.json")).unwrap();
    let p = d.join("dangling.json");
    assert_eq!(resolve(p.to_str().unwrap()).unwrap(), d.join("target.json"));
    fs::remove_dir_all(d).unwrap();
  }

  #[cfg(unix)]
  #[test]
  fn errors_name_the_given_path() {
    let err = resolve("/definitely/not/here/index.json").unwrap_err();
    assert_eq!(err.code(), "ENOENT");
    assert!(err.message().contains("/definitely/not/here/index.json"));
    assert_eq!(resolve("").unwrap_err().code(), "ERR_INVALID_ARG_VALUE");
    assert_eq!(resolve("a\0b").unwrap_err().code(), "ERR_INVALID_ARG_VALUE");
    assert_eq!(resolve("/tmp/..").unwrap_err().code(), "EISDIR");
  }

  #[cfg(unix)]
  #[test]
  fn symlink_loops_end_in_eloop() {
    let d = tempdir("loop");
    symlink("b", d.join("a")).unwrap();
    symlink("a", d.join("b")).unwrap();
    assert_eq!(
      resolve(d.join("a").to_str().unwrap()).unwrap_err().code(),
      "ELOOP"
    );
    fs::remove_dir_all(d).unwrap();
  }

  #[test]
  fn sidecar_sits_beside_the_file() {
    assert_eq!(
      sidecar(Path::new("/d/index.json")),
      Path::new("/d/index.json.lock")
    );
  }

  #[cfg(windows)]
  #[test]
  fn windows_spellings_resolve_to_one_plain_key() {
    let d = tempdir("win");
    fs::write(d.join("index.json"), "{}").unwrap();
    let want = d.join("index.json");
    assert!(!want.to_str().unwrap().starts_with(r"\\?\"), "{want:?}");
    let forward = want.to_str().unwrap().replace('\\', "/");
    let verbatim = format!(r"\\?\{}", want.display());
    let dotted = d.join("x").join("..").join("index.json");
    for spelling in [forward, verbatim, dotted.to_str().unwrap().to_string()] {
      assert_eq!(resolve(&spelling).unwrap(), want, "{spelling}");
    }
    let root = &want.to_str().unwrap()[..3];
    assert_eq!(resolve(root).unwrap_err().code(), "EISDIR");
    fs::remove_dir_all(d).unwrap();
  }

  #[cfg(windows)]
  #[test]
  fn verbatim_paths_lose_their_prefix_only_when_that_keeps_their_meaning() {
    assert_eq!(
      sys::simplify(PathBuf::from(r"\\?\C:\data\index.json")),
      Path::new(r"C:\data\index.json")
    );
    assert_eq!(
      sys::simplify(PathBuf::from(r"\\?\UNC\server\share\index.json")),
      Path::new(r"\\server\share\index.json")
    );
    for keep in [
      r"\\?\C:\data\trailing.",
      r"\\?\C:\data\NUL.json",
      r"\\?\C:\data\space ",
    ] {
      assert_eq!(sys::simplify(PathBuf::from(keep)), Path::new(keep));
    }
  }
}

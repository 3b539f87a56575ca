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
    let dir = sys::simplify(fs::canonicalize(&dir).map_err(|e| unresolved(e, &dir, given))?);
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

/// The error of a directory `dir` of `given` that does not resolve. A missing one is named (see
/// `Error::NoDirectory`); any other failure is `realpath`'s own.
fn unresolved(e: io::Error, dir: &Path, given: &Path) -> Error {
  if e.kind() != io::ErrorKind::NotFound {
    return Error::io(e, "realpath", given);
  }
  match first_missing(dir) {
    Some(missing) => Error::NoDirectory {
      source: e,
      path: given.to_path_buf(),
      dangling: fs::symlink_metadata(&missing).is_ok(),
      dir: missing,
    },
    // Created since, or gone for a moment: nothing more to say than realpath did.
    None => Error::io(e, "realpath", given),
  }
}

/// The first directory of the absolute `dir`, from the root down, that does not exist (as the
/// OS looks it up, symlinks followed), if any.
fn first_missing(dir: &Path) -> Option<PathBuf> {
  let mut ancestors: Vec<&Path> = dir.ancestors().collect();
  ancestors.reverse();
  ancestors
    .into_iter()
    .find(|a| matches!(fs::metadata(a), Err(e) if e.kind() == io::ErrorKind::NotFound))
    .map(Path::to_path_buf)
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

/// Longest file name most filesystems take (NAME_MAX).
const NAME_MAX: usize = 255;
/// Bytes of a long data file name kept in its sidecar's name.
const LONG_NAME_KEPT: usize = 200;

/// The advisory-lock sidecar of a resolved data path: `<path>.lock` beside it. For a name too
/// long for that (more than 250 bytes), `<first 200 bytes of the name>.<first 16 hex digits of
/// the SHA-256 of the whole name>.lock`: still beside it, still derivable by any language.
pub fn sidecar(data: &Path) -> PathBuf {
  let name = data.file_name().map_or(&[][..], |n| n.as_encoded_bytes());
  if name.len() + ".lock".len() <= NAME_MAX {
    let mut s = data.as_os_str().to_os_string();
    s.push(".lock");
    return PathBuf::from(s);
  }
  let digest = sha256(name);
  let mut short = crate::sys::name_prefix(name, LONG_NAME_KEPT).to_vec();
  short.push(b'.');
  for b in &digest[..8] {
    short.extend_from_slice(format!("{b:02x}").as_bytes());
  }
  short.extend_from_slice(b".lock");
  data.with_file_name(crate::sys::os_string(short))
}

/// SHA-256 (FIPS 180-4), for long sidecar names: small enough to carry instead of a crate.
fn sha256(data: &[u8]) -> [u8; 32] {
  const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ];
  let mut h: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ];
  let mut msg = data.to_vec();
  msg.push(0x80);
  while msg.len() % 64 != 56 {
    msg.push(0);
  }
  msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
  for block in msg.chunks(64) {
    let mut w = [0u32; 64];
    for (i, word) in block.chunks(4).enumerate() {
      w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    }
    for i in 16..64 {
      let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
      let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16]
        .wrapping_add(s0)
        .wrapping_add(w[i - 7])
        .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
    for i in 0..64 {
      let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
      let ch = (e & f) ^ (!e & g);
      let t1 = hh
        .wrapping_add(s1)
        .wrapping_add(ch)
        .wrapping_add(K[i])
        .wrapping_add(w[i]);
      let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
      let maj = (a & b) ^ (a & c) ^ (b & c);
      let t2 = s0.wrapping_add(maj);
      hh = g;
      g = f;
      f = e;
      e = d.wrapping_add(t1);
      d = c;
      c = b;
      b = a;
      a = t1.wrapping_add(t2);
    }
    for (x, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
      *x = x.wrapping_add(v);
    }
  }
  let mut out = [0u8; 32];
  for (i, x) in h.iter().enumerate() {
    out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
  }
  out
}

#[cfg(test)]
mod tests {
  use super::*;
  #[cfg(unix)]
  use std::os::unix::fs::symlink;

  fn tempdir(tag: &str) -> PathBuf {
    let d = crate::testdir::fresh(&format!("path-{tag}"));
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
    assert!(err
      .message()
      .contains("the directory '/definitely' does not exist"));
    assert_eq!(resolve("").unwrap_err().code(), "ERR_INVALID_ARG_VALUE");
    assert_eq!(resolve("a\0b").unwrap_err().code(), "ERR_INVALID_ARG_VALUE");
    assert_eq!(resolve("/tmp/..").unwrap_err().code(), "EISDIR");
  }

  #[cfg(unix)]
  #[test]
  fn a_missing_directory_is_named_and_reported_as_open_would() {
    let d = tempdir("nodir");
    let p = d.join("data/sub/index.json");
    let err = resolve(p.to_str().unwrap()).unwrap_err();
    assert_eq!(err.code(), "ENOENT");
    let v: serde_json::Value = serde_json::from_str(&err.to_json()).unwrap();
    assert_eq!(v["errno"], -2);
    assert_eq!(v["syscall"], "open");
    assert_eq!(v["path"], p.to_str().unwrap());
    let named = format!(
      "the directory '{}' does not exist",
      d.join("data").display()
    );
    assert!(err.message().contains(&named), "{}", err.message());
    assert!(!err.message().contains("symlink"));
    symlink(d.join("gone"), d.join("link")).unwrap();
    let err = resolve(d.join("link/index.json").to_str().unwrap()).unwrap_err();
    let named = format!(
      "the directory '{}' does not exist",
      d.join("link").display()
    );
    assert!(err.message().contains(&named), "{}", err.message());
    assert!(err.message().contains("symlink"));
    fs::remove_dir_all(d).unwrap();
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
    let fits = "n".repeat(250);
    assert_eq!(
      sidecar(&Path::new("/d").join(&fits)),
      Path::new("/d").join(format!("{fits}.lock"))
    );
  }

  #[test]
  fn long_names_get_a_truncated_hashed_sidecar_name() {
    let hex = |d: [u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(
      hex(sha256(b"")),
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
      hex(sha256(b"abc")),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Two blocks of padding.
    assert_eq!(
      hex(sha256(
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
      )),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    let long = "l".repeat(251);
    let digest = hex(sha256(long.as_bytes()));
    let want = format!("{}.{}.lock", &long[..200], &digest[..16]);
    let got = sidecar(&Path::new("/d").join(&long));
    assert_eq!(got, Path::new("/d").join(&want));
    assert!(want.len() <= NAME_MAX);
    // Different long names that share their first 200 bytes get different sidecars.
    let other = format!("{}x", "l".repeat(250));
    assert_ne!(sidecar(&Path::new("/d").join(other)), got);
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

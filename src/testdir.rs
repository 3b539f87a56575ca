//! The one scratch-directory helper of the Rust unit tests.

use std::fs;
use std::path::PathBuf;

/// A fresh, empty directory for the test named `tag`, unique to this test process; whatever a
/// previous run left there is removed first. Tests remove it when they pass.
pub fn fresh(tag: &str) -> PathBuf {
  let d = std::env::temp_dir().join(format!("index-lock-{tag}-{}", std::process::id()));
  let _ = fs::remove_dir_all(&d);
  fs::create_dir_all(&d).unwrap();
  d
}

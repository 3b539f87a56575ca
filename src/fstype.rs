//! Filesystem identification: which filesystem holds a path, and whether flock is coherent there.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys;

/// What flock(2) on a filesystem can be trusted with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coherence {
  /// Local (or a local view such as overlay): flock is coherent for every process on this host.
  Local,
  /// Distributed with locks carried to a server (NFS with a lock manager, GlusterFS, Ceph, ...):
  /// coherent across hosts when configured for it.
  Distributed,
  /// Locks stay on this host (or do nothing) while other hosts may write: updates can be lost.
  Unsafe,
}

impl Coherence {
  pub fn as_str(self) -> &'static str {
    match self {
      Coherence::Local => "local",
      Coherence::Distributed => "distributed",
      Coherence::Unsafe => "unsafe",
    }
  }
}

/// The filesystem holding a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsInfo {
  /// `statfs` f_type.
  pub magic: u64,
  /// The type name: from /proc/self/mountinfo on Linux (it tells FUSE backends apart, e.g.
  /// `fuse.sshfs`), statfs's `f_fstypename` on macOS, the volume's file system on Windows, else
  /// from the statfs magic.
  pub fstype: String,
  /// The mount's options (mount and superblock), comma-separated; empty when unknown.
  pub options: String,
  pub mount_point: Option<PathBuf>,
  pub coherence: Coherence,
  /// Why, in a few words, for warnings.
  pub reason: &'static str,
}

/// statfs magics and their names (from linux/magic.h).
const MAGICS: &[(u64, &str)] = &[
  (0xEF53, "ext4"),
  (0x58465342, "xfs"),
  (0x9123683E, "btrfs"),
  (0x01021994, "tmpfs"),
  (0x794C7630, "overlay"),
  (0x2FC12FC1, "zfs"),
  (0xF2F52010, "f2fs"),
  (0x3153464A, "jfs"),
  (0x52654973, "reiserfs"),
  (0x4D44, "vfat"),
  (0x2011BAB0, "exfat"),
  (0x5346544E, "ntfs"),
  (0x65735546, "fuse"),
  (0x6969, "nfs"),
  (0x517B, "smb"),
  (0xFF534D42, "cifs"),
  (0xFE534D42, "smb2"),
  (0x01021997, "9p"),
  (0x786F4256, "vboxsf"),
  (0x00C36400, "ceph"),
  (0x01161970, "gfs2"),
  (0x7461636F, "ocfs2"),
  (0x0BD00BD0, "lustre"),
  (0x5346414F, "afs"),
  (0x6B414653, "afs"),
  (0x73717368, "squashfs"),
  (0x9FA0, "proc"),
  (0x62656572, "sysfs"),
];

fn magic_name(magic: u64) -> Option<&'static str> {
  MAGICS.iter().find(|(m, _)| *m == magic).map(|(_, n)| *n)
}

/// The type name of a statfs magic, or the magic in hex when the table does not know it.
#[allow(dead_code)]
pub(crate) fn magic_type(magic: u64) -> String {
  magic_name(magic).map_or_else(|| format!("0x{magic:x}"), str::to_string)
}

/// Whether a read served from the page cache on a filesystem of this type (as mountinfo names it)
/// cannot end up waiting for a network or a FUSE daemon: kernel filesystems that keep their data
/// on this host. An allowlist: a type not named here (an unknown one, any FUSE backend, even a
/// local one whose daemon can hang, proc and sysfs whose reads run driver code) says no. Nor does
/// overlay, whose open opens the file in a lower layer that may be FUSE or NFS.
pub fn serves_cached_reads(fstype: &str) -> bool {
  matches!(
    fstype,
    "ext2"
      | "ext3"
      | "ext4"
      | "xfs"
      | "btrfs"
      | "bcachefs"
      | "tmpfs"
      | "ramfs"
      | "zfs"
      | "f2fs"
      | "jfs"
      | "reiserfs"
      | "nilfs2"
      | "vfat"
      | "msdos"
      | "exfat"
      | "ntfs3"
      | "hfsplus"
      | "squashfs"
      | "erofs"
      | "iso9660"
      | "udf"
  )
}

/// The verdict for a filesystem type (as mountinfo names it) and its mount options.
pub fn classify(fstype: &str, options: &str) -> (Coherence, &'static str) {
  let opts: Vec<&str> = options.split(',').collect();
  let has = |o: &str| opts.contains(&o);
  match fstype {
    "nfs" | "nfs4" => {
      if has("nolock") || has("local_lock=all") || has("local_lock=flock") {
        (
          Coherence::Unsafe,
          "NFS mounted with nolock/local_lock: flocks stay on this host",
        )
      } else {
        (
          Coherence::Distributed,
          "NFS: flock is coherent only with a working lock manager (NLM or NFSv4)",
        )
      }
    }
    "fuse.glusterfs" | "glusterfs" => (
      Coherence::Distributed,
      "GlusterFS: flock is coherent across clients; turn client caching off",
    ),
    "ceph" | "fuse.ceph" | "fuse.ceph-fuse" | "gfs2" | "ocfs2" | "lustre" => (
      Coherence::Distributed,
      "cluster filesystem with distributed locks",
    ),
    "smb" | "smb2" | "smb3" | "cifs" => (
      Coherence::Unsafe,
      "SMB/CIFS: flock is not carried to the server",
    ),
    "9p" | "vboxsf" | "virtiofs" | "afs" | "fuse.sshfs" => (
      Coherence::Unsafe,
      "network or shared-folder filesystem without coherent flock",
    ),
    // FUSE backends whose files all live on this host (a block device, local directories,
    // kernel state): the kernel's own flock covers every process that can reach them.
    "fuseblk"
    | "fuse.fuse-overlayfs"
    | "fuse.ntfs-3g"
    | "fuse.ntfs"
    | "fuse.exfat"
    | "fuse.fuse-exfat"
    | "fuse.lxcfs"
    | "fuse.squashfuse"
    | "fuse.squashfuse_ll"
    | "fuse.bindfs"
    | "fuse.mergerfs"
    | "fuse.unionfs"
    | "fuse.unionfs-fuse"
    | "fuse.encfs"
    | "fuse.gocryptfs"
    | "fuse.securefs"
    | "fuse.portal"
    | "fuse.appimagefuse" => (
      Coherence::Local,
      "local FUSE filesystem (its data stays on this host)",
    ),
    t if t == "fuse" || t.starts_with("fuse.") => (
      Coherence::Unsafe,
      "FUSE filesystem (sync clients and remote mounts do not carry flock between hosts)",
    ),
    _ => (Coherence::Local, "local filesystem"),
  }
}

/// Unescapes the octal escapes (`\040` for a space) mountinfo uses in paths.
fn unescape(field: &str) -> Vec<u8> {
  let b = field.as_bytes();
  let mut out = Vec::with_capacity(b.len());
  let mut i = 0;
  while i < b.len() {
    if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
    {
      out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
      i += 4;
    } else {
      out.push(b[i]);
      i += 1;
    }
  }
  out
}

/// One line of /proc/self/mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountLine {
  /// The mount's id (what statx's STATX_MNT_ID gives for a file under it).
  pub id: u64,
  pub mount_point: PathBuf,
  pub fstype: String,
  /// Mount and superblock options, comma-separated.
  pub options: String,
}

/// Parses a mountinfo line: "36 35 98:0 /root /mnt rw,noatime shared:1 - ext4 /dev/sda1 rw".
pub fn mount_line(line: &str) -> Option<MountLine> {
  let (left, right) = line.split_once(" - ")?;
  let left: Vec<&str> = left.split(' ').collect();
  let right: Vec<&str> = right.split(' ').collect();
  if left.len() < 6 || right.len() < 3 {
    return None;
  }
  Some(MountLine {
    id: left[0].parse().ok()?,
    mount_point: PathBuf::from(sys::os_string(unescape(left[4]))),
    fstype: right[0].to_string(),
    options: format!("{},{}", left[5], right[2]),
  })
}

/// The mount holding `path` in a /proc/self/mountinfo table: (mount point, fstype, options).
/// The longest mount point that is a prefix wins; later lines win ties (they are mounted on top).
pub fn mount_of(table: &str, path: &Path) -> Option<(PathBuf, String, String)> {
  let mut best: Option<(PathBuf, String, String)> = None;
  for m in table.lines().filter_map(mount_line) {
    if !path.starts_with(&m.mount_point) {
      continue;
    }
    let longer = best
      .as_ref()
      .is_none_or(|(b, _, _)| m.mount_point.as_os_str().len() >= b.as_os_str().len());
    if longer {
      best = Some((m.mount_point, m.fstype, m.options));
    }
  }
  best
}

/// Identifies the filesystem holding the directory `dir` (resolved).
pub fn identify(dir: &Path) -> Result<FsInfo> {
  let sys::Probe {
    magic,
    fstype,
    options,
    mount_point,
    verdict,
  } = sys::probe_fs(dir).map_err(|e| match e.raw_os_error() {
    // A NUL byte in the path (see `sys::statfs`).
    None if e.kind() == std::io::ErrorKind::InvalidInput => Error::InvalidArgValue {
      name: "path",
      reason: "must be a string without null bytes".into(),
    },
    _ => Error::io(e, "statfs", dir),
  })?;
  // Crash tests of the warning path impersonate a network filesystem.
  #[cfg(feature = "fault-injection")]
  let fstype = std::env::var("INDEX_LOCK_FAKE_FSTYPE").unwrap_or(fstype);
  #[cfg(feature = "fault-injection")]
  let verdict = verdict.filter(|_| std::env::var("INDEX_LOCK_FAKE_FSTYPE").is_err());
  let (coherence, reason) = verdict.unwrap_or_else(|| classify(&fstype, &options));
  Ok(FsInfo {
    magic,
    fstype,
    options,
    mount_point,
    coherence,
    reason,
  })
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_type_table_flags_what_cannot_carry_locks() {
    for (t, o, want) in [
      ("ext4", "rw,relatime", Coherence::Local),
      ("tmpfs", "rw", Coherence::Local),
      ("overlay", "rw", Coherence::Local),
      ("btrfs", "rw", Coherence::Local),
      ("nfs4", "rw,vers=4.2", Coherence::Distributed),
      ("nfs", "rw,vers=3,nolock", Coherence::Unsafe),
      ("nfs4", "rw,local_lock=flock", Coherence::Unsafe),
      ("nfs", "rw,local_lock=none", Coherence::Distributed),
      ("fuse.glusterfs", "rw", Coherence::Distributed),
      ("ceph", "rw", Coherence::Distributed),
      ("cifs", "rw", Coherence::Unsafe),
      ("smb3", "rw", Coherence::Unsafe),
      ("fuse.sshfs", "rw", Coherence::Unsafe),
      ("fuse.rclone", "rw", Coherence::Unsafe),
      ("fuse", "rw", Coherence::Unsafe),
      ("fuse.gvfsd-fuse", "rw", Coherence::Unsafe),
      ("fuse.s3fs", "rw", Coherence::Unsafe),
      // Rootless containers' overlay and NTFS/exFAT drives are local.
      ("fuse.fuse-overlayfs", "rw", Coherence::Local),
      ("fuseblk", "rw,user_id=0", Coherence::Local),
      ("fuse.lxcfs", "rw", Coherence::Local),
      ("fuse.mergerfs", "rw", Coherence::Local),
      ("9p", "rw", Coherence::Unsafe),
      ("vboxsf", "rw", Coherence::Unsafe),
    ] {
      assert_eq!(classify(t, o).0, want, "{t} {o}");
    }
  }

  #[test]
  fn only_known_local_kernel_filesystems_may_serve_cached_reads() {
    for (fstype, local) in [
      ("ext4", true),
      ("ext3", true),
      ("xfs", true),
      ("btrfs", true),
      ("tmpfs", true),
      ("overlay", false), // its lower layers may be anything
      ("fuse.sshfs", false),
      ("fuse.fuse-overlayfs", false), // local data, but a daemon that can hang
      ("fuseblk", false),
      ("fuse", false),
      ("nfs", false),
      ("nfs4", false),
      ("cifs", false),
      ("smb3", false),
      ("9p", false),
      ("virtiofs", false),
      ("ceph", false),
      ("proc", false),
      ("sysfs", false),
      ("somefs", false), // unknown
    ] {
      assert_eq!(serves_cached_reads(fstype), local, "{fstype}");
    }
  }

  #[test]
  fn mountinfo_picks_the_innermost_mount() {
    let table = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                 30 22 0:40 / /data rw shared:2 - nfs4 srv:/x rw,vers=4.2\n\
                 31 30 0:41 / /data/sync\\040dir rw - fuse.rclone remote: rw,user_id=0\n";
    let (mp, t, o) = mount_of(table, Path::new("/data/sync dir/index.json")).unwrap();
    assert_eq!(mp, Path::new("/data/sync dir"));
    assert_eq!(t, "fuse.rclone");
    assert!(o.contains("user_id=0"));
    assert_eq!(mount_of(table, Path::new("/data/x")).unwrap().1, "nfs4");
    assert_eq!(mount_of(table, Path::new("/datax")).unwrap().1, "ext4");
    let ids: Vec<(u64, String)> = table
      .lines()
      .filter_map(mount_line)
      .map(|m| (m.id, m.fstype))
      .collect();
    assert_eq!(ids[2], (31, "fuse.rclone".to_string()));
  }

  #[test]
  fn identifies_real_local_filesystems() {
    let info = identify(&std::env::temp_dir()).unwrap();
    assert_eq!(info.coherence, Coherence::Local, "{info:?}");
    assert!(!info.fstype.is_empty());
    #[cfg(target_os = "linux")]
    assert_eq!(identify(Path::new("/proc")).unwrap().fstype, "proc");
  }
}

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

/// The verdict on a filesystem from what the OS says of it (see `sys::Probe`): beside the type
/// name and options (`classify`), what the OS says about where its data lives.
fn judge(fstype: &str, options: &str, locality: sys::Locality) -> (Coherence, &'static str) {
  match locality {
    // A UNC path or a mapped network drive (Windows) is an SMB share: LockFileEx there is
    // carried to the server only for clients of that one server, and sync clients and other
    // protocols behind it do not see it, so the same policy as for SMB on Unix applies.
    sys::Locality::NetworkDrive(true) => (
      Coherence::Unsafe,
      "network share (SMB): its locks do not exclude writers that reach the files another way",
    ),
    // macOS's type names, and its word on what is local.
    sys::Locality::MntLocal(local) => match fstype {
      // NFS keeps the type table's verdict (locks go through the NFS lock manager).
      "nfs" => classify(fstype, options),
      "smbfs" | "afpfs" | "webdav" | "ftp" => (
        Coherence::Unsafe,
        "network filesystem: flock is not carried to the server",
      ),
      t if t.contains("fuse") => (
        Coherence::Unsafe,
        "FUSE filesystem (sync clients and remote mounts do not carry flock between hosts)",
      ),
      _ if !local => (
        Coherence::Unsafe,
        "not a local filesystem: flock may not exclude other hosts",
      ),
      _ => classify(fstype, options),
    },
    _ => classify(fstype, options),
  }
}

/// Identifies the filesystem holding the directory `dir` (resolved).
pub fn identify(dir: &Path) -> Result<FsInfo> {
  let sys::Probe {
    magic,
    fstype,
    options,
    mount_point,
    locality,
  } = sys::probe_fs(dir).map_err(|e| match e.raw_os_error() {
    // A NUL byte in the path (see `sys::statfs`).
    None if e.kind() == std::io::ErrorKind::InvalidInput => Error::InvalidArgValue {
      name: "path",
      reason: "must be a string without null bytes".into(),
    },
    _ => Error::io(e, "statfs", dir),
  })?;
  let fstype = fstype.unwrap_or_else(|| magic_type(magic));
  // Crash tests of the warning path impersonate a network filesystem, judged by its name alone.
  #[cfg(feature = "fault-injection")]
  let (fstype, locality) = match std::env::var("INDEX_LOCK_FAKE_FSTYPE") {
    Ok(fake) => (fake, sys::Locality::Untold),
    Err(_) => (fstype, locality),
  };
  let (coherence, reason) = judge(&fstype, &options, locality);
  Ok(FsInfo {
    magic,
    fstype,
    options,
    mount_point,
    coherence,
    reason,
  })
}

/// Whether every flock on the filesystem holding `dir` goes through this host's kernel, which
/// then knows every holder: a local filesystem, and not FUSE (a FUSE daemon may handle flock
/// itself, as GlusterFS's does even for this host's holders). False where it cannot be
/// identified.
pub fn flocks_stay_in_kernel(dir: &Path) -> bool {
  let Ok(info) = identify(dir) else {
    return false;
  };
  let fuse = info.fstype == "fuse" || info.fstype == "fuseblk" || info.fstype.starts_with("fuse.");
  info.coherence == Coherence::Local && !fuse
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
  fn identifies_real_local_filesystems() {
    let info = identify(&std::env::temp_dir()).unwrap();
    assert_eq!(info.coherence, Coherence::Local, "{info:?}");
    assert!(!info.fstype.is_empty());
    #[cfg(target_os = "linux")]
    assert_eq!(identify(Path::new("/proc")).unwrap().fstype, "proc");
  }
}

//! A container's root filesystem and mounts, set up by its first process in its own
//! mount namespace (so that every mount disappears with the namespace when the
//! container ends), before `pivot_root`.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::ShimSpec;
use crate::agent::runtime::Mount;

/// The host devices a container gets (bind-mounted into its `/dev`).
pub(crate) const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// `path` (absolute or relative, as inside the container) resolved inside `root`:
/// symbolic links are followed as the container would see them (an absolute target is
/// taken from `root`, `..` never climbs above it), so the answer is always under `root`.
pub(crate) fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf, String> {
    let mut pending: Vec<OsString> = Path::new(path)
        .components()
        .rev()
        .filter_map(component_name)
        .collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(&resolved).join(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(format!("{path}: too many levels of symbolic links"));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(|e| format!("{}: {e}", candidate.display()))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                pending.extend(target.components().rev().filter_map(component_name));
            }
            _ => resolved.push(c),
        }
    }
    Ok(root.join(resolved))
}

fn component_name(c: Component<'_>) -> Option<OsString> {
    match c {
        Component::Normal(n) => Some(n.to_owned()),
        Component::ParentDir => Some("..".into()),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    }
}

/// Copies the tree at `src` to `dst` (created), keeping modes, owners and symbolic
/// links. Device nodes, sockets and pipes of the image are skipped (the container's
/// `/dev` is made separately).
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let m = std::fs::symlink_metadata(&from)?;
        let ft = m.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if ft.is_dir() {
            copy_tree(&from, &to)?;
            continue;
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
        } else {
            continue;
        }
        let _ = std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()));
    }
    let _ = std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()));
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
}

/// Unmounts whatever is mounted at or under `dir` in this mount namespace (containers
/// mount in their own namespaces, so normally nothing; this is for what an interrupted
/// setup might have left).
pub(crate) fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut targets: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    // Deepest first.
    targets.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for t in targets {
        let _ = umount2(&t, MntFlags::MNT_DETACH);
    }
}

fn unescape_mountinfo(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn errno(what: impl std::fmt::Display) -> impl FnOnce(nix::Error) -> String {
    move |e| format!("{what}: {e}")
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

fn open_dir(path: &Path) -> Result<OwnedFd, String> {
    open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno(format!("opening {}", path.display())))
}

/// Makes the container's root: an overlay of the image's root filesystem at
/// `STATE/merged` (upper and work directories in `STATE`), or a copy at `STATE/rootfs`
/// bind-mounted on itself. Answers the root and `overlay` or `copy`.
pub(crate) fn make_root(spec: &ShimSpec, state: &Path) -> Result<(PathBuf, &'static str), String> {
    if !spec.rootfs_copy {
        let merged = state.join("merged");
        let upper = state.join("upper");
        let work = state.join("work");
        for d in [&merged, &upper, &work] {
            std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
        }
        // Paths with `:` or `,` (an image reference has a `:`) cannot be written in
        // overlay's options; the directories' file descriptors' paths can.
        let lower_fd = open_dir(&spec.image_rootfs)?;
        let upper_fd = open_dir(&upper)?;
        let work_fd = open_dir(&work)?;
        let data = format!(
            "lowerdir=/proc/self/fd/{},upperdir=/proc/self/fd/{},workdir=/proc/self/fd/{}",
            lower_fd.as_raw_fd(),
            upper_fd.as_raw_fd(),
            work_fd.as_raw_fd()
        );
        match mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        ) {
            Ok(()) => return Ok((merged, "overlay")),
            Err(e) => eprintln!(
                "plimsoll shim: overlay mount refused ({e}); copying the image's root filesystem"
            ),
        }
    }
    let root = state.join("rootfs");
    if !root.exists() {
        copy_tree(&spec.image_rootfs, &root).map_err(io(format!(
            "copying {} to {}",
            spec.image_rootfs.display(),
            root.display()
        )))?;
    }
    mount(
        Some(&root),
        &root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(errno(format!("bind-mounting {} on itself", root.display())))?;
    Ok((root, "copy"))
}

fn ensure_file(path: &Path) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
    }
    if !path.exists() {
        std::fs::File::create(path).map_err(io(format!("creating {}", path.display())))?;
    }
    Ok(())
}

/// Mounts `/proc`, `/dev`, `/etc/hostname` and the spec's mounts under `root`.
pub(crate) fn populate(root: &Path, state: &Path, mounts: &[Mount]) -> Result<(), String> {
    let proc_dir = resolve_in_root(root, "/proc")?;
    std::fs::create_dir_all(&proc_dir).map_err(io(format!("creating {}", proc_dir.display())))?;
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(errno(format!("mounting proc on {}", proc_dir.display())))?;

    let dev = resolve_in_root(root, "/dev")?;
    std::fs::create_dir_all(&dev).map_err(io(format!("creating {}", dev.display())))?;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(errno(format!("mounting a tmpfs on {}", dev.display())))?;
    for name in DEVICES {
        let target = dev.join(name);
        ensure_file(&target)?;
        let source = Path::new("/dev").join(name);
        mount(
            Some(&source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(errno(format!(
            "bind-mounting {} on {}",
            source.display(),
            target.display()
        )))?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link))
            .map_err(io(format!("linking /dev/{link}")))?;
    }
    let shm = dev.join("shm");
    std::fs::create_dir_all(&shm).map_err(io(format!("creating {}", shm.display())))?;
    mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(errno(format!("mounting a tmpfs on {}", shm.display())))?;

    let hostname_target = resolve_in_root(root, "/etc/hostname")?;
    ensure_file(&hostname_target)?;
    let hostname_source = state.join("hostname");
    mount(
        Some(&hostname_source),
        &hostname_target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(errno(format!(
        "bind-mounting {} on /etc/hostname",
        hostname_source.display()
    )))?;

    for m in mounts {
        let target = resolve_in_root(root, &m.container_path)?;
        let source_is_dir = std::fs::metadata(&m.host_path)
            .map_err(io(format!("mount source {}", m.host_path.display())))?
            .is_dir();
        if source_is_dir {
            std::fs::create_dir_all(&target)
                .map_err(io(format!("creating {}", target.display())))?;
        } else {
            ensure_file(&target)?;
        }
        mount(
            Some(&m.host_path),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(errno(format!(
            "bind-mounting {} on {}",
            m.host_path.display(),
            m.container_path
        )))?;
        if m.read_only {
            mount(
                None::<&str>,
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(errno(format!("making {} read-only", m.container_path)))?;
        }
    }
    Ok(())
}

/// Makes `root` the process's root (`pivot_root`, the old root detached).
pub(crate) fn pivot(root: &Path) -> Result<(), String> {
    nix::unistd::chdir(root).map_err(errno(format!("chdir {}", root.display())))?;
    // pivot_root(".", ".") stacks the old root on the new one; detaching "." then
    // removes the old root (runc does the same), with no directory needed for it.
    nix::unistd::pivot_root(".", ".")
        .map_err(errno(format!("pivot_root to {}", root.display())))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(errno("detaching the old root"))?;
    nix::unistd::chdir("/").map_err(errno("chdir /"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_stays_inside_the_root() {
        let root = std::env::temp_dir().join(format!("plimsoll-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(&root, "/a/b/c").unwrap(),
            root.join("a/b/c")
        );
        assert_eq!(
            resolve_in_root(&root, "/a/abs/passwd").unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(&root, "/a/b/up/x").unwrap(), root.join("x"));
        assert_eq!(resolve_in_root(&root, "/../../x").unwrap(), root.join("x"));
        assert!(resolve_in_root(&root, "/loop/x").is_err());
        let copy = root.with_extension("copy");
        copy_tree(&root, &copy).unwrap();
        assert_eq!(
            std::fs::read_link(copy.join("a/abs")).unwrap(),
            PathBuf::from("/etc")
        );
        assert!(copy.join("a/b").is_dir());
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&copy).unwrap();
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
    }
}

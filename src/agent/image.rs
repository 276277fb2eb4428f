//! The process runtime's image store (`--image-dir`).
//!
//! Layout: one directory per image reference, `DIR/<escaped reference>/`, holding the
//! unpacked root filesystem in `rootfs/` and the image's config in `image.json`
//! ([`ImageConfig`] plus the image `id` and the root filesystem's `size`, written by
//! [`ImageStore::import`]). The escaped reference is the normalised reference
//! (`busybox` → `busybox:latest`, `docker.io/library/busybox:1.36` → `busybox:1.36`, see
//! [`normalize`]) with `%` written `%25` and `/` written `%2F`. A directory with a
//! `rootfs/` and no `image.json` is an image too (a plain root filesystem: no entrypoint,
//! no environment, working directory `/`; its id is the `sha256:` of its reference and
//! its size is measured when it is resolved). Names starting with `.` are the store's own
//! work directories (imports in progress), never images.
//!
//! [`ImageStore::import`] reads an OCI image layout archive (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) or a `docker save` archive (`manifest.json`; layers as
//! `ID/layer.tar` in the legacy format or as OCI blobs in newer Docker), plain or
//! gzip-compressed. Layers are applied in order with the OCI whiteouts (`.wh.NAME`
//! removes `NAME` of the lower layers, `.wh..wh..opq` empties a directory of what the
//! lower layers put there), symlinks, hardlinks, permissions, ownership and modification
//! times. Every path is resolved inside the root being built (`openat2` with
//! `RESOLVE_IN_ROOT`, then `*at` calls on the final name that never follow a symlink), so
//! no entry can write outside it: a `..` that would climb above the root and absolute
//! entry names are rejected, and a symlink in the image (`lib -> /usr/lib`, or a hostile
//! `evil -> /etc`) is followed as the container will see it, within the root. Device
//! nodes are not created (a container gets its `/dev` from the runtime). Blob digests
//! (OCI) and layer diff ids (both formats) are verified. The image is unpacked into a work
//! directory inside the store and renamed into place atomically, replacing an image of
//! the same reference.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, openat2, renameat2, OFlag, OpenHow, RenameFlags, ResolveFlag, AT_FDCWD};
use nix::sys::stat::{fchmod, fstatat, futimens, mkdirat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{
    fchown, fchownat, linkat, mkfifoat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags,
};

/// The parts of an image's config a container starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageConfig {
    /// `Entrypoint`.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// `Env`, `NAME=value` each.
    #[serde(default)]
    pub env: Vec<String>,
    /// `WorkingDir` (empty: `/`).
    #[serde(default)]
    pub working_dir: String,
}

/// An image found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The normalised reference (`busybox:latest`).
    pub reference: String,
    /// The image id (`sha256:` of its config where imported; of the reference for a plain
    /// directory).
    pub id: String,
    /// The unpacked root filesystem (never written to: containers get their own copy or
    /// overlay).
    pub rootfs: PathBuf,
    /// Entrypoint, cmd, env, working directory.
    pub config: ImageConfig,
    /// Size of the root filesystem in bytes.
    pub size: u64,
}

/// Why an image operation failed. Every message names the reference, the archive and
/// the part of it (file, layer, entry, field), or the store path at fault.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The reference is not a valid image reference.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The archive is unreadable, malformed or hostile.
    #[error("archive {}: {part}: {reason}", archive.display())]
    Archive {
        /// The archive file.
        archive: PathBuf,
        /// The part at fault (`index.json`, `layer blobs/sha256/…`, `manifest.json`).
        part: String,
        /// What is wrong (naming the entry or field).
        reason: String,
    },
    /// A directory given to [`ImageStore::import_dir`] cannot be copied.
    #[error("directory {}: {reason}", path.display())]
    Source {
        /// The directory or the file in it at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An image in the store is damaged (unreadable `image.json`, no `rootfs/` directory).
    #[error("image {reference:?} in {}: {reason}", dir.display())]
    Corrupt {
        /// The image's reference.
        reference: String,
        /// Its directory in the store.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing the store failed.
    #[error("image store {}: {what}: {source}", path.display())]
    Store {
        /// The path in the store.
        path: PathBuf,
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

/// The normalised form of an image reference: `busybox` → `busybox:latest`,
/// `docker.io/library/busybox:1.36` → `busybox:1.36`, `docker.io/user/app` →
/// `user/app:latest`, `registry.local:5000/app` → `registry.local:5000/app:latest`;
/// a digest (`name@sha256:…`) is kept as is (no `:latest` added). Follows the grammar of
/// Docker's references (lower-case path components, tags of at most 128 characters,
/// `sha256`/`sha512` digests).
pub fn normalize(reference: &str) -> Result<String, ImageError> {
    let bad = |reason: String| ImageError::InvalidReference {
        reference: reference.to_string(),
        reason,
    };
    if reference.is_empty() {
        return Err(bad("empty reference".into()));
    }
    if reference
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad("contains whitespace or control characters".into()));
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest {
        check_digest(d).map_err(|r| bad(format!("digest {d:?}: {r}")))?;
    }
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(bad(format!(
                "tag {t:?} is not 1 to 128 of [A-Za-z0-9_.-] starting with a letter, digit or _"
            )));
        }
    }
    if name.is_empty() {
        return Err(bad("empty repository name".into()));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let mut domain = None;
    if parts.len() > 1
        && (parts[0].contains('.')
            || parts[0].contains(':')
            || parts[0] == "localhost"
            || parts[0].chars().any(|c| c.is_ascii_uppercase()))
    {
        let d = parts.remove(0);
        let (host, port) = match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        };
        let host_ok = !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        let port_ok = port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
        if !host_ok || !port_ok {
            return Err(bad(format!("registry {d:?} is not HOST[:PORT]")));
        }
        domain = Some(d);
    }
    for p in &parts {
        if !path_component_ok(p) {
            return Err(bad(format!(
                "path component {p:?} is not lower-case letters and digits separated by '.', '_', '__' or dashes"
            )));
        }
    }
    if matches!(
        domain,
        Some("docker.io" | "index.docker.io" | "registry-1.docker.io")
    ) {
        domain = None;
    }
    if domain.is_none() && parts.len() == 2 && parts[0] == "library" {
        parts.remove(0);
    }
    let mut out = String::new();
    if let Some(d) = domain {
        out.push_str(d);
        out.push('/');
    }
    out.push_str(&parts.join("/"));
    if out.len() > 255 {
        return Err(bad("repository name longer than 255 characters".into()));
    }
    match (tag, digest) {
        (Some(t), _) => {
            out.push(':');
            out.push_str(t);
        }
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    Ok(out)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn path_component_ok(p: &str) -> bool {
    let b = p.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &p[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

/// Checks `ALGORITHM:HEX` (sha256 with 64 lower-case hex digits, sha512 with 128).
fn check_digest(d: &str) -> Result<(&str, &str), String> {
    let (alg, hex) = d
        .split_once(':')
        .ok_or_else(|| "not ALGORITHM:HEX".to_string())?;
    let len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(format!("unsupported algorithm {alg:?} (sha256 or sha512)")),
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return Err(format!("{alg} needs {len} lower-case hex digits"));
    }
    Ok((alg, hex))
}

fn escape(reference: &str) -> String {
    reference.replace('%', "%25").replace('/', "%2F")
}

fn unescape(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("%25") => out.push('%'),
            Some("%2F") | Some("%2f") => out.push('/'),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// `image.json`: the config plus what the store knows of the image.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StoredImage {
    #[serde(flatten)]
    config: ImageConfig,
    id: String,
    size: u64,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The image store at a directory.
#[derive(Debug, Clone)]
pub struct ImageStore {
    dir: PathBuf,
}

static WORK_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A work directory inside the store, removed when dropped unless [`WorkDir::keep`]
/// was called.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn keep(mut self) -> PathBuf {
        self.keep = true;
        std::mem::take(&mut self.path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep && !self.path.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.path);
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl ImageStore {
    /// The store at `dir` (created when missing). Work directories left by imports of
    /// processes that no longer run are removed.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                let Some(rest) = name.strip_prefix(".tmp-") else {
                    continue;
                };
                let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
                if let Some(pid) = pid {
                    if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = fs::remove_dir_all(e.path());
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        Ok(Self { dir })
    }

    /// The store's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn store_err(path: &Path, what: &str, source: io::Error) -> ImageError {
        ImageError::Store {
            path: path.to_path_buf(),
            what: what.to_string(),
            source,
        }
    }

    /// A fresh work directory (`DIR/.tmp-PID-N-KIND`), not yet created.
    fn work_path(&self, kind: &str) -> WorkDir {
        let n = WORK_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        WorkDir {
            path: self
                .dir
                .join(format!(".tmp-{}-{n}-{nanos}-{kind}", std::process::id())),
            keep: false,
        }
    }

    fn image_dir(&self, reference: &str) -> PathBuf {
        self.dir.join(escape(reference))
    }

    /// The image of `reference` (normalised first), or `None` when the store has none.
    pub fn resolve(&self, reference: &str) -> Result<Option<ResolvedImage>, ImageError> {
        let reference = normalize(reference)?;
        let dir = self.image_dir(&reference);
        self.load(&reference, &dir)
    }

    fn load(&self, reference: &str, dir: &Path) -> Result<Option<ResolvedImage>, ImageError> {
        let rootfs = dir.join("rootfs");
        match fs::metadata(&rootfs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(ImageError::Corrupt {
                    reference: reference.to_string(),
                    dir: dir.to_path_buf(),
                    reason: "rootfs is not a directory".into(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Self::store_err(&rootfs, "reading", e)),
        }
        let json = dir.join("image.json");
        let stored = match fs::read(&json) {
            Ok(bytes) => {
                serde_json::from_slice::<StoredImage>(&bytes).map_err(|e| ImageError::Corrupt {
                    reference: reference.to_string(),
                    dir: dir.to_path_buf(),
                    reason: format!("image.json: {e}"),
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => StoredImage {
                config: ImageConfig::default(),
                id: format!("sha256:{}", sha256_hex(reference.as_bytes())),
                size: tree_size(&rootfs).map_err(|e| Self::store_err(&rootfs, "measuring", e))?,
            },
            Err(e) => return Err(Self::store_err(&json, "reading", e)),
        };
        Ok(Some(ResolvedImage {
            reference: reference.to_string(),
            id: stored.id,
            rootfs,
            config: stored.config,
            size: stored.size,
        }))
    }

    /// Every image in the store, by reference. A damaged image is left out (with a
    /// warning in the log) rather than hiding the others.
    pub fn list(&self) -> Result<Vec<ResolvedImage>, ImageError> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| Self::store_err(&self.dir, "listing", e))?;
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(|e| Self::store_err(&self.dir, "listing", e))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let Some(reference) = unescape(name) else {
                continue;
            };
            if normalize(&reference).ok().as_deref() != Some(reference.as_str()) {
                continue;
            }
            match self.load(&reference, &e.path()) {
                Ok(Some(img)) => out.push(img),
                Ok(None) => {}
                Err(err) => tracing::warn!("image store: skipping {reference}: {err}"),
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Removes the image of `reference`; `false` when there was none.
    pub fn remove(&self, reference: &str) -> Result<bool, ImageError> {
        let reference = normalize(reference)?;
        let dir = self.image_dir(&reference);
        let work = self.work_path("rm");
        match fs::rename(&dir, &work.path) {
            Ok(()) => {
                fs::remove_dir_all(&work.path)
                    .map_err(|e| Self::store_err(&work.path, "removing", e))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Self::store_err(&dir, "removing", e)),
        }
    }

    /// Moves the prepared image directory `work` (with `rootfs/` and `image.json`) to
    /// the place of `reference`, atomically replacing an image already there.
    fn install(&self, work: WorkDir, reference: &str) -> Result<(), ImageError> {
        let dest = self.image_dir(reference);
        let path = work.keep();
        let mut cleanup = WorkDir {
            path: path.clone(),
            keep: false,
        };
        for _ in 0..8 {
            match renameat2(
                AT_FDCWD,
                &path,
                AT_FDCWD,
                &dest,
                RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => {
                    cleanup.keep = true;
                    return Ok(());
                }
                Err(Errno::EEXIST) | Err(Errno::ENOTEMPTY) => {}
                Err(e) => return Err(Self::store_err(&dest, "installing", e.into())),
            }
            match renameat2(
                AT_FDCWD,
                &path,
                AT_FDCWD,
                &dest,
                RenameFlags::RENAME_EXCHANGE,
            ) {
                // `path` now holds the previous image; `cleanup` removes it.
                Ok(()) => return Ok(()),
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(Self::store_err(&dest, "replacing", e.into())),
            }
        }
        Err(Self::store_err(
            &dest,
            "installing",
            io::Error::other("the destination kept changing under concurrent imports"),
        ))
    }

    /// Writes `image.json` into `work` and installs it as `reference`.
    fn finish(
        &self,
        work: WorkDir,
        reference: &str,
        config: &ImageConfig,
        id: &str,
    ) -> Result<ResolvedImage, ImageError> {
        let rootfs = work.path.join("rootfs");
        let size = tree_size(&rootfs).map_err(|e| Self::store_err(&rootfs, "measuring", e))?;
        let stored = StoredImage {
            config: config.clone(),
            id: id.to_string(),
            size,
        };
        let json = work.path.join("image.json");
        let bytes = serde_json::to_vec_pretty(&stored)
            .map_err(|e| Self::store_err(&json, "encoding", io::Error::other(e)))?;
        let mut f = File::create(&json).map_err(|e| Self::store_err(&json, "writing", e))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| Self::store_err(&json, "writing", e))?;
        self.install(work, reference)?;
        Ok(ResolvedImage {
            reference: reference.to_string(),
            id: id.to_string(),
            rootfs: self.image_dir(reference).join("rootfs"),
            config: config.clone(),
            size,
        })
    }

    /// Copies the directory `rootfs` into the store as the image `name` (a plain root
    /// filesystem: default config, id the `sha256:` of the reference), keeping modes,
    /// ownership, modification times, symlinks and hardlinks. Replaces an image of the
    /// same reference.
    pub fn import_dir(&self, rootfs: &Path, name: &str) -> Result<ResolvedImage, ImageError> {
        let reference = normalize(name)?;
        let meta = fs::metadata(rootfs).map_err(|e| ImageError::Source {
            path: rootfs.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !meta.is_dir() {
            return Err(ImageError::Source {
                path: rootfs.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        let work = self.work_path("dir");
        fs::create_dir(&work.path).map_err(|e| Self::store_err(&work.path, "creating", e))?;
        let dst = work.path.join("rootfs");
        fs::create_dir(&dst).map_err(|e| Self::store_err(&dst, "creating", e))?;
        copy_tree(rootfs, &dst)?;
        let id = format!("sha256:{}", sha256_hex(reference.as_bytes()));
        self.finish(work, &reference, &ImageConfig::default(), &id)
    }

    /// Imports an OCI image layout archive or a `docker save` archive (plain or gzip).
    ///
    /// The reference is `name` when given (the archive must then hold one image), else
    /// the archive's own: `RepoTags` of `docker save` (every tag becomes an image), the
    /// `io.containerd.image.name` or `org.opencontainers.image.ref.name` annotation of an
    /// OCI index. Of a multi-platform image, the manifest for linux and this machine's
    /// architecture is taken (or the only one). Returns the images written.
    pub fn import(
        &self,
        archive: &Path,
        name: Option<&str>,
    ) -> Result<Vec<ResolvedImage>, ImageError> {
        let ctx = Ctx { archive };
        let name = name.map(normalize).transpose()?;
        let mut file = File::open(archive).map_err(|e| ctx.err("opening", e.to_string()))?;
        let mut magic = [0u8; 2];
        let n = read_up_to(&mut file, &mut magic).map_err(|e| ctx.err("reading", e.to_string()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| ctx.err("reading", e.to_string()))?;
        // A gzip-compressed archive is decompressed into the store first (blobs are read
        // by offset).
        let mut _decompressed = None;
        if n == 2 && magic == [0x1f, 0x8b] {
            let work = self.work_path("archive.tar");
            let mut out = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&work.path)
                .map_err(|e| Self::store_err(&work.path, "creating", e))?;
            io::copy(
                &mut flate2::read::MultiGzDecoder::new(BufReader::new(file)),
                &mut out,
            )
            .map_err(|e| ctx.err("gzip", e.to_string()))?;
            out.seek(SeekFrom::Start(0))
                .map_err(|e| Self::store_err(&work.path, "reading", e))?;
            file = out;
            _decompressed = Some(work);
        }
        let index = ArchiveIndex::read(file, &ctx)?;
        let plans = if index.lookup("manifest.json").is_some() {
            docker_plans(&index, &ctx, name.as_deref())?
        } else if index.lookup("index.json").is_some() {
            oci_plans(&index, &ctx, name.as_deref())?
        } else {
            return Err(ctx.err(
                "format",
                "neither an OCI image layout (no index.json) nor a docker save archive (no manifest.json)",
            ));
        };
        let mut out = Vec::new();
        for plan in plans {
            out.extend(self.import_plan(&index, &ctx, plan)?);
        }
        Ok(out)
    }

    fn import_plan(
        &self,
        index: &ArchiveIndex,
        ctx: &Ctx,
        plan: Plan,
    ) -> Result<Vec<ResolvedImage>, ImageError> {
        let config_json: ConfigJson = serde_json::from_slice(&plan.config_bytes)
            .map_err(|e| ctx.err(format!("config {}", plan.config_path), e.to_string()))?;
        let cc = config_json.config.unwrap_or_default();
        let config = ImageConfig {
            entrypoint: cc.entrypoint.unwrap_or_default(),
            cmd: cc.cmd.unwrap_or_default(),
            env: cc.env.unwrap_or_default(),
            working_dir: cc.working_dir.unwrap_or_default(),
        };
        let diff_ids = config_json.rootfs.map(|r| r.diff_ids).unwrap_or_default();
        if !diff_ids.is_empty() && diff_ids.len() != plan.layers.len() {
            return Err(ctx.err(
                format!("config {}", plan.config_path),
                format!(
                    "rootfs.diff_ids lists {} layers, the manifest {}",
                    diff_ids.len(),
                    plan.layers.len()
                ),
            ));
        }
        let id = format!("sha256:{}", sha256_hex(&plan.config_bytes));

        let work = self.work_path("import");
        fs::create_dir(&work.path).map_err(|e| Self::store_err(&work.path, "creating", e))?;
        let rootfs = work.path.join("rootfs");
        fs::create_dir(&rootfs).map_err(|e| Self::store_err(&rootfs, "creating", e))?;
        fs::set_permissions(&rootfs, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| Self::store_err(&rootfs, "creating", e))?;
        let root = nix::fcntl::open(
            &rootfs,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Self::store_err(&rootfs, "opening", e.into()))?;
        for (i, layer) in plan.layers.iter().enumerate() {
            let part = format!("layer {}", layer.path);
            let (offset, size) = index
                .lookup(&layer.path)
                .ok_or_else(|| ctx.err(&part, "missing from the archive"))?;
            if let Some(want) = layer.size {
                if want != size {
                    return Err(ctx.err(&part, format!("size {size}, the manifest says {want}")));
                }
            }
            let raw = index
                .reader(offset, size)
                .map_err(|e| ctx.err(&part, e.to_string()))?;
            let blob_alg = layer
                .digest
                .as_deref()
                .map(|d| d.split(':').next().unwrap_or("sha256"));
            let mut blob = HashingReader::new(raw, blob_alg == Some("sha512"));
            let diff = {
                let mut buffered = BufReader::with_capacity(64 * 1024, &mut blob);
                let head = buffered
                    .fill_buf()
                    .map_err(|e| ctx.err(&part, e.to_string()))?;
                let decoded: Box<dyn Read + '_> = if head.starts_with(&[0x1f, 0x8b]) {
                    Box::new(flate2::read::MultiGzDecoder::new(buffered))
                } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                    return Err(ctx.err(
                        &part,
                        "zstd-compressed layers are not supported (gzip or plain tar)",
                    ));
                } else if head.starts_with(b"BZh")
                    || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
                {
                    return Err(ctx.err(
                        &part,
                        "bzip2/xz-compressed layers are not supported (gzip or plain tar)",
                    ));
                } else {
                    Box::new(buffered)
                };
                let mut diff = HashingReader::new(decoded, false);
                let mut unpacker = Unpacker {
                    root: &root,
                    ctx,
                    part: &part,
                    written: HashSet::new(),
                    dirs: Vec::new(),
                };
                unpacker.apply(&mut diff)?;
                io::copy(&mut diff, &mut io::sink()).map_err(|e| ctx.err(&part, e.to_string()))?;
                diff.hex()
            };
            io::copy(&mut blob, &mut io::sink()).map_err(|e| ctx.err(&part, e.to_string()))?;
            if let Some(want) = &layer.digest {
                let (alg, _) = want.split_once(':').unwrap_or(("sha256", ""));
                let got = format!("{alg}:{}", blob.hex());
                if &got != want {
                    return Err(ctx.err(
                        &part,
                        format!("digest mismatch: the content is {got}, the manifest says {want}"),
                    ));
                }
            }
            if let Some(want) = diff_ids.get(i) {
                let got = format!("sha256:{diff}");
                if want.starts_with("sha256:") && &got != want {
                    return Err(ctx.err(
                        &part,
                        format!("diff id mismatch: the uncompressed layer is {got}, the config's rootfs.diff_ids[{i}] is {want}"),
                    ));
                }
            }
        }
        drop(root);
        let mut out = Vec::new();
        let mut refs = plan.references.iter();
        let first = refs
            .next()
            .ok_or_else(|| ctx.err("name", "no reference for the image"))?;
        // Further references get their own copy of the unpacked tree.
        let mut copies = Vec::new();
        for r in refs {
            let w = self.work_path("import");
            fs::create_dir(&w.path).map_err(|e| Self::store_err(&w.path, "creating", e))?;
            let dst = w.path.join("rootfs");
            fs::create_dir(&dst).map_err(|e| Self::store_err(&dst, "creating", e))?;
            copy_tree(&rootfs, &dst)?;
            copies.push((w, r));
        }
        out.push(self.finish(work, first, &config, &id)?);
        for (w, r) in copies {
            out.push(self.finish(w, r, &config, &id)?);
        }
        Ok(out)
    }
}

/// The archive being imported, for error messages.
struct Ctx<'a> {
    archive: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, part: impl Into<String>, reason: impl Into<String>) -> ImageError {
        ImageError::Archive {
            archive: self.archive.to_path_buf(),
            part: part.into(),
            reason: reason.into(),
        }
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A reader that hashes what passes through it (SHA-256, or SHA-512).
struct HashingReader<R> {
    inner: R,
    ctx: ring::digest::Context,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R, sha512: bool) -> Self {
        let alg = if sha512 {
            &ring::digest::SHA512
        } else {
            &ring::digest::SHA256
        };
        Self {
            inner,
            ctx: ring::digest::Context::new(alg),
        }
    }

    fn hex(&self) -> String {
        hex(self.ctx.clone().finish().as_ref())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.ctx.update(&buf[..n]);
        Ok(n)
    }
}

/// Lexically cleans an archive-internal path: `./a//b/../c` → `a/c`; `None` when it
/// climbs above the root. A leading `/` is ignored.
fn clean_archive_path(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

enum IndexEntry {
    File { offset: u64, size: u64 },
    Link(String),
    Other,
}

/// The files of the (uncompressed) archive: where each one's data is.
struct ArchiveIndex {
    file: File,
    entries: HashMap<String, IndexEntry>,
}

impl ArchiveIndex {
    fn read(file: File, ctx: &Ctx) -> Result<Self, ImageError> {
        let mut entries = HashMap::new();
        {
            let mut ar = tar::Archive::new(&file);
            let it = ar
                .entries_with_seek()
                .map_err(|e| ctx.err("tar", format!("not a tar archive: {e}")))?;
            for e in it {
                let e = e.map_err(|e| ctx.err("tar", format!("not a tar archive: {e}")))?;
                let raw = e.path_bytes();
                let name = String::from_utf8_lossy(&raw).into_owned();
                let Some(path) = clean_archive_path(&name) else {
                    continue;
                };
                let ty = e.header().entry_type();
                let entry = if ty.is_file() || ty == tar::EntryType::Continuous {
                    IndexEntry::File {
                        offset: e.raw_file_position(),
                        size: e.size(),
                    }
                } else if ty.is_symlink() || ty.is_hard_link() {
                    let target = e
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let joined = if ty.is_hard_link() || target.starts_with('/') {
                        target
                    } else {
                        match path.rsplit_once('/') {
                            Some((dir, _)) => format!("{dir}/{target}"),
                            None => target,
                        }
                    };
                    match clean_archive_path(&joined) {
                        Some(t) => IndexEntry::Link(t),
                        None => IndexEntry::Other,
                    }
                } else if ty.is_pax_global_extensions() {
                    continue;
                } else {
                    IndexEntry::Other
                };
                entries.insert(path, entry);
            }
        }
        Ok(Self { file, entries })
    }

    /// `(offset, size)` of a regular file, following links inside the archive.
    fn lookup(&self, path: &str) -> Option<(u64, u64)> {
        let mut p = clean_archive_path(path)?;
        for _ in 0..16 {
            match self.entries.get(&p)? {
                IndexEntry::File { offset, size } => return Some((*offset, *size)),
                IndexEntry::Link(t) => p = t.clone(),
                IndexEntry::Other => return None,
            }
        }
        None
    }

    fn reader(&self, offset: u64, size: u64) -> io::Result<impl Read> {
        let mut f = self.file.try_clone()?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(BufReader::with_capacity(256 * 1024, f).take(size))
    }

    /// A small file of the archive (JSON), at most `limit` bytes.
    fn read_small(&self, path: &str, ctx: &Ctx, limit: u64) -> Result<Vec<u8>, ImageError> {
        let (offset, size) = self
            .lookup(path)
            .ok_or_else(|| ctx.err(path, "missing from the archive"))?;
        if size > limit {
            return Err(ctx.err(path, format!("{size} bytes, more than the {limit} allowed")));
        }
        let mut buf = Vec::with_capacity(size as usize);
        self.reader(offset, size)
            .and_then(|mut r| r.read_to_end(&mut buf))
            .map_err(|e| ctx.err(path, e.to_string()))?;
        Ok(buf)
    }
}

const JSON_LIMIT: u64 = 16 << 20;

/// One image to unpack: its references, config and layers.
struct Plan {
    references: Vec<String>,
    config_path: String,
    config_bytes: Vec<u8>,
    layers: Vec<LayerRef>,
}

struct LayerRef {
    /// Path in the archive.
    path: String,
    /// Expected blob digest (OCI descriptors, blob paths).
    digest: Option<String>,
    /// Expected blob size.
    size: Option<u64>,
}

#[derive(serde::Deserialize, Default)]
struct ConfigJson {
    #[serde(default)]
    config: Option<ContainerConfigJson>,
    #[serde(default)]
    rootfs: Option<RootFsJson>,
}

#[derive(serde::Deserialize, Default)]
struct ContainerConfigJson {
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
}

#[derive(serde::Deserialize)]
struct RootFsJson {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(serde::Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The digest a path `blobs/ALG/HEX` stands for.
fn digest_of_blob_path(path: &str) -> Option<String> {
    let p = clean_archive_path(path)?;
    let mut it = p.split('/');
    let (Some("blobs"), Some(alg), Some(hex), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    let d = format!("{alg}:{hex}");
    check_digest(&d).ok()?;
    Some(d)
}

fn docker_plans(
    index: &ArchiveIndex,
    ctx: &Ctx,
    name: Option<&str>,
) -> Result<Vec<Plan>, ImageError> {
    let bytes = index.read_small("manifest.json", ctx, JSON_LIMIT)?;
    let manifest: Vec<DockerManifestEntry> =
        serde_json::from_slice(&bytes).map_err(|e| ctx.err("manifest.json", e.to_string()))?;
    if manifest.is_empty() {
        return Err(ctx.err("manifest.json", "lists no image"));
    }
    if name.is_some() && manifest.len() > 1 {
        return Err(ctx.err(
            "manifest.json",
            format!(
                "lists {} images; --name names one (import without it to use their RepoTags)",
                manifest.len()
            ),
        ));
    }
    let mut plans = Vec::new();
    for (i, m) in manifest.into_iter().enumerate() {
        let references = match name {
            Some(n) => vec![n.to_string()],
            None => {
                let tags = m.repo_tags.unwrap_or_default();
                if tags.is_empty() {
                    return Err(ctx.err(
                        format!("manifest.json: [{i}]"),
                        "no RepoTags (an untagged image): give --name",
                    ));
                }
                let mut refs = Vec::new();
                for t in tags {
                    let r = normalize(&t).map_err(|e| {
                        ctx.err(format!("manifest.json: [{i}].RepoTags"), e.to_string())
                    })?;
                    if !refs.contains(&r) {
                        refs.push(r);
                    }
                }
                refs
            }
        };
        let config_bytes = index.read_small(&m.config, ctx, JSON_LIMIT)?;
        // The legacy format names the config `HEX.json`, the newer one `blobs/sha256/HEX`.
        let want = digest_of_blob_path(&m.config).or_else(|| {
            let base = m.config.rsplit('/').next()?.strip_suffix(".json")?;
            let d = format!("sha256:{base}");
            check_digest(&d).ok()?;
            Some(d)
        });
        if let Some(want) = want {
            let got = format!("sha256:{}", sha256_hex(&config_bytes));
            if want.starts_with("sha256:") && got != want {
                return Err(ctx.err(&m.config, format!("digest mismatch: the content is {got}")));
            }
        }
        let layers = m
            .layers
            .iter()
            .map(|l| LayerRef {
                path: l.clone(),
                digest: digest_of_blob_path(l),
                size: None,
            })
            .collect();
        plans.push(Plan {
            references,
            config_path: m.config,
            config_bytes,
            layers,
        });
    }
    Ok(plans)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciIndex {
    manifests: Vec<Descriptor>,
}

#[derive(serde::Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(serde::Deserialize, Clone)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciManifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaTypeProbe {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
}

fn is_index_media_type(t: &str) -> bool {
    t == "application/vnd.oci.image.index.v1+json"
        || t == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// This machine's architecture as OCI names it.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Reads the blob of a descriptor, checking its size and digest.
fn read_blob(
    index: &ArchiveIndex,
    ctx: &Ctx,
    what: &str,
    d: &Descriptor,
) -> Result<(String, Vec<u8>), ImageError> {
    let (alg, hex) = check_digest(&d.digest)
        .map_err(|r| ctx.err(what, format!("digest {:?}: {r}", d.digest)))?;
    let path = format!("blobs/{alg}/{hex}");
    let bytes = index.read_small(&path, ctx, JSON_LIMIT)?;
    if let Some(size) = d.size {
        if size != bytes.len() as u64 {
            return Err(ctx.err(&path, format!("{} bytes, {what} says {size}", bytes.len())));
        }
    }
    let got = match alg {
        "sha512" => hex_digest(&ring::digest::SHA512, &bytes),
        _ => sha256_hex(&bytes),
    };
    if got != hex {
        return Err(ctx.err(
            &path,
            format!("digest mismatch: the content is {alg}:{got}"),
        ));
    }
    Ok((path, bytes))
}

fn hex_digest(alg: &'static ring::digest::Algorithm, bytes: &[u8]) -> String {
    hex(ring::digest::digest(alg, bytes).as_ref())
}

/// The image manifests a descriptor stands for (nested indexes flattened), with the
/// platform each was listed with.
fn flatten_manifests(
    index: &ArchiveIndex,
    ctx: &Ctx,
    what: &str,
    d: &Descriptor,
    depth: u32,
    out: &mut Vec<(Descriptor, String)>,
) -> Result<(), ImageError> {
    if depth > 4 {
        return Err(ctx.err(what, "indexes nested more than 4 deep"));
    }
    let is_index = match d.media_type.as_deref() {
        Some(t) if is_index_media_type(t) => true,
        Some(_) => false,
        None => {
            let (path, bytes) = read_blob(index, ctx, what, d)?;
            let probe: MediaTypeProbe =
                serde_json::from_slice(&bytes).map_err(|e| ctx.err(&path, e.to_string()))?;
            probe.media_type.as_deref().is_some_and(is_index_media_type)
                || probe.manifests.is_some()
        }
    };
    if !is_index {
        out.push((d.clone(), what.to_string()));
        return Ok(());
    }
    let (path, bytes) = read_blob(index, ctx, what, d)?;
    let nested: OciIndex =
        serde_json::from_slice(&bytes).map_err(|e| ctx.err(&path, e.to_string()))?;
    for (i, m) in nested.manifests.iter().enumerate() {
        flatten_manifests(
            index,
            ctx,
            &format!("{path}: manifests[{i}]"),
            m,
            depth + 1,
            out,
        )?;
    }
    Ok(())
}

/// Picks the manifest to import among candidates: the only one, else linux on this
/// machine's architecture (attestation manifests left out).
fn pick_platform(
    ctx: &Ctx,
    what: &str,
    cands: Vec<(Descriptor, String)>,
) -> Result<(Descriptor, String), ImageError> {
    let mut cands: Vec<_> = cands
        .into_iter()
        .filter(|(d, _)| {
            d.annotations
                .get("vnd.docker.reference.type")
                .map(String::as_str)
                != Some("attestation-manifest")
                && d.platform.as_ref().is_none_or(|p| p.os != "unknown")
        })
        .collect();
    if cands.len() == 1 {
        return Ok(cands.remove(0));
    }
    let listed: Vec<String> = cands
        .iter()
        .map(|(d, _)| match &d.platform {
            Some(p) => format!("{}/{}", p.os, p.architecture),
            None => "no platform".to_string(),
        })
        .collect();
    let arch = host_arch();
    let pos = cands.iter().position(|(d, _)| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
    });
    match pos {
        Some(i) => Ok(cands.remove(i)),
        None if cands.is_empty() => Err(ctx.err(what, "lists no image manifest")),
        None => Err(ctx.err(
            what,
            format!("no manifest for linux/{arch} among: {}", listed.join(", ")),
        )),
    }
}

/// Top-level descriptors of one image: its name and `(position in index.json, descriptor)`.
type NamedDescriptors = (Option<String>, Vec<(usize, Descriptor)>);

fn oci_plans(index: &ArchiveIndex, ctx: &Ctx, name: Option<&str>) -> Result<Vec<Plan>, ImageError> {
    if index.lookup("oci-layout").is_some() {
        let bytes = index.read_small("oci-layout", ctx, 1 << 20)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| ctx.err("oci-layout", e.to_string()))?;
        match v.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some(s) if s.starts_with("1.") => {}
            Some(s) => {
                return Err(ctx.err("oci-layout", format!("imageLayoutVersion {s:?} is not 1.x")))
            }
            None => return Err(ctx.err("oci-layout", "missing field \"imageLayoutVersion\"")),
        }
    }
    let bytes = index.read_small("index.json", ctx, JSON_LIMIT)?;
    let top: OciIndex =
        serde_json::from_slice(&bytes).map_err(|e| ctx.err("index.json", e.to_string()))?;
    if top.manifests.is_empty() {
        return Err(ctx.err("index.json", "lists no manifest"));
    }
    // Group the top-level descriptors by the image they name.
    let mut groups: Vec<NamedDescriptors> = Vec::new();
    for (i, d) in top.manifests.iter().enumerate() {
        let key = if name.is_some() {
            None
        } else {
            let ann = d
                .annotations
                .get("io.containerd.image.name")
                .or_else(|| d.annotations.get("org.opencontainers.image.ref.name"));
            match ann {
                Some(a) => Some(normalize(a).map_err(|e| {
                    ctx.err(
                        format!("index.json: manifests[{i}].annotations"),
                        e.to_string(),
                    )
                })?),
                None => {
                    return Err(ctx.err(
                        format!("index.json: manifests[{i}]"),
                        "no org.opencontainers.image.ref.name annotation: give --name",
                    ))
                }
            }
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push((i, d.clone())),
            None => groups.push((key, vec![(i, d.clone())])),
        }
    }
    let mut plans = Vec::new();
    for (key, descs) in groups {
        let reference = match (name, key) {
            (Some(n), _) => n.to_string(),
            (None, Some(k)) => k,
            (None, None) => unreachable!("descriptors without a name were rejected above"),
        };
        let mut cands = Vec::new();
        for (i, d) in &descs {
            flatten_manifests(
                index,
                ctx,
                &format!("index.json: manifests[{i}]"),
                d,
                0,
                &mut cands,
            )?;
        }
        let (md, what) = pick_platform(ctx, "index.json", cands)?;
        let (mpath, mbytes) = read_blob(index, ctx, &what, &md)?;
        let manifest: OciManifest =
            serde_json::from_slice(&mbytes).map_err(|e| ctx.err(&mpath, e.to_string()))?;
        let (cpath, config_bytes) =
            read_blob(index, ctx, &format!("{mpath}: config"), &manifest.config)?;
        let mut layers = Vec::new();
        for (i, l) in manifest.layers.iter().enumerate() {
            let (alg, hex) = check_digest(&l.digest).map_err(|r| {
                ctx.err(
                    format!("{mpath}: layers[{i}]"),
                    format!("digest {:?}: {r}", l.digest),
                )
            })?;
            if let Some(t) = &l.media_type {
                if t.contains("zstd") {
                    return Err(ctx.err(
                        format!("{mpath}: layers[{i}]"),
                        format!("media type {t}: zstd layers are not supported"),
                    ));
                }
            }
            layers.push(LayerRef {
                path: format!("blobs/{alg}/{hex}"),
                digest: Some(l.digest.clone()),
                size: l.size,
            });
        }
        plans.push(Plan {
            references: vec![reference],
            config_path: cpath,
            config_bytes,
            layers,
        });
    }
    if name.is_some() && plans.len() > 1 {
        return Err(ctx.err("index.json", "holds several images; --name names one"));
    }
    Ok(plans)
}

/// Applies one layer (a tar stream) to the root being built.
struct Unpacker<'a> {
    root: &'a OwnedFd,
    ctx: &'a Ctx<'a>,
    part: &'a str,
    /// Paths this layer wrote (and their parents): whiteouts spare them.
    written: HashSet<String>,
    /// Directories and their modification times, set once the layer is done.
    dirs: Vec<(Vec<String>, i64)>,
}

const RESOLVE: ResolveFlag = ResolveFlag::RESOLVE_IN_ROOT
    .union(ResolveFlag::RESOLVE_NO_MAGICLINKS)
    .union(ResolveFlag::RESOLVE_NO_XDEV);

impl Unpacker<'_> {
    fn err(&self, entry: &str, reason: impl std::fmt::Display) -> ImageError {
        self.ctx
            .err(self.part, format!("entry {entry:?}: {reason}"))
    }

    /// `entry "NAME" escapes the root`, `entry "/x" is an absolute path`.
    fn refuse(&self, entry: &str, reason: impl std::fmt::Display) -> ImageError {
        self.ctx.err(self.part, format!("entry {entry:?} {reason}"))
    }

    /// The directory `parent` (components below the root), resolved inside the root;
    /// created (mode 0755) when missing and `create`. `None` when missing otherwise.
    fn open_dir(
        &self,
        entry: &str,
        parent: &[String],
        create: bool,
    ) -> Result<Option<OwnedFd>, ImageError> {
        let how = OpenHow::new()
            .flags(OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC)
            .resolve(RESOLVE);
        let path = if parent.is_empty() {
            ".".to_string()
        } else {
            parent.join("/")
        };
        match openat2(self.root.as_fd(), path.as_str(), how) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT) if create && !parent.is_empty() => {
                let (last, up) = parent.split_last().expect("not empty");
                let Some(upfd) = self.open_dir(entry, up, true)? else {
                    return Err(self.err(entry, format!("cannot create the directory {path:?}")));
                };
                match mkdirat(&upfd, last.as_str(), Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(self.err(entry, format!("creating the directory {path:?}: {e}")))
                    }
                }
                match openat2(self.root.as_fd(), path.as_str(), how) {
                    Ok(fd) => Ok(Some(fd)),
                    Err(e) => Err(self.err(entry, format!("opening the directory {path:?}: {e}"))),
                }
            }
            Err(Errno::ENOENT) => Ok(None),
            Err(Errno::ENOTDIR) => Err(self.err(entry, format!("{path:?} is not a directory"))),
            Err(Errno::EXDEV) => Err(self.err(
                entry,
                format!("{path:?} leads out of the root's filesystem"),
            )),
            Err(e) => Err(self.err(entry, format!("opening the directory {path:?}: {e}"))),
        }
    }

    /// What is at `name` in `dir` (not following a symlink), if anything.
    fn kind_at(dir: &OwnedFd, name: &str) -> Result<Option<SFlag>, Errno> {
        match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(SFlag::from_bits_truncate(
                st.st_mode & SFlag::S_IFMT.bits(),
            ))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes whatever is at `name` in `dir` (a directory with all it holds).
    fn remove_at(&self, entry: &str, dir: &OwnedFd, name: &str) -> Result<(), ImageError> {
        match Self::kind_at(dir, name).map_err(|e| self.err(entry, e))? {
            None => Ok(()),
            Some(SFlag::S_IFDIR) => {
                // `dir` was resolved inside the root and `name` is a real directory (not
                // a symlink): remove_dir_all never follows symlinks below it.
                use std::os::fd::AsRawFd;
                let p = PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()));
                fs::remove_dir_all(&p)
                    .map_err(|e| self.err(entry, format!("removing {name:?}: {e}")))
            }
            Some(_) => unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| self.err(entry, format!("removing {name:?}: {e}"))),
        }
    }

    fn chown_at(
        &self,
        entry: &str,
        dir: &OwnedFd,
        name: &str,
        uid: u32,
        gid: u32,
    ) -> Result<(), ImageError> {
        match fchownat(
            dir,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(()) => Ok(()),
            Err(Errno::EPERM) if !nix::unistd::geteuid().is_root() => Ok(()),
            Err(e) => Err(self.err(entry, format!("chown: {e}"))),
        }
    }

    fn apply<R: Read>(&mut self, reader: R) -> Result<(), ImageError> {
        let mut ar = tar::Archive::new(reader);
        let entries = ar
            .entries()
            .map_err(|e| self.ctx.err(self.part, format!("not a tar stream: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| self.ctx.err(self.part, format!("not a tar stream: {e}")))?;
            let raw = entry.path_bytes();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let ty = entry.header().entry_type();
            if ty.is_pax_global_extensions()
                || ty.is_pax_local_extensions()
                || ty.is_gnu_longname()
                || ty.is_gnu_longlink()
            {
                continue;
            }
            let comps = clean_entry_path(&raw).map_err(|r| self.refuse(&shown, r))?;
            let header = entry.header();
            // An empty numeric field (some writers leave them blank) reads as 0.
            let blank = |f: &[u8]| f.iter().all(|&b| b == 0 || b == b' ');
            let old = header.as_old();
            let numeric = |v: io::Result<u64>, field: &[u8], what: &str| match v {
                Ok(v) => Ok(v),
                Err(_) if blank(field) => Ok(0),
                Err(e) => Err(self.err(&shown, format!("{what}: {e}"))),
            };
            let mode = numeric(header.mode().map(u64::from), &old.mode, "mode")? as u32 & 0o7777;
            let uid = numeric(header.uid(), &old.uid, "uid")?;
            let gid = numeric(header.gid(), &old.gid, "gid")?;
            let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
                return Err(self.err(&shown, format!("owner {uid}:{gid} out of range")));
            };
            let mtime = header.mtime().unwrap_or(0).min(i64::MAX as u64) as i64;

            let Some((name, parent)) = comps.split_last() else {
                // The root itself (`./`).
                if !ty.is_dir() {
                    return Err(self.err(&shown, "the root of a layer must be a directory"));
                }
                let root = self.root.try_clone().map_err(|e| self.err(&shown, e))?;
                self.set_meta_fd(&shown, &root, uid, gid, mode)?;
                self.dirs.push((Vec::new(), mtime));
                continue;
            };
            if let Some(hidden) = name.strip_prefix(".wh.") {
                if hidden == ".wh..opq" {
                    self.opaque(&shown, parent)?;
                } else if !hidden.starts_with(".wh.") {
                    self.whiteout(&shown, parent, hidden)?;
                }
                continue;
            }
            let dir = self
                .open_dir(&shown, parent, true)?
                .ok_or_else(|| self.err(&shown, "parent directory missing"))?;
            let name = name.as_str();
            let existing = Self::kind_at(&dir, name).map_err(|e| self.err(&shown, e))?;
            match ty {
                t if t.is_dir() => {
                    if existing != Some(SFlag::S_IFDIR) {
                        if existing.is_some() {
                            self.remove_at(&shown, &dir, name)?;
                        }
                        mkdirat(&dir, name, Mode::from_bits_truncate(0o700))
                            .map_err(|e| self.err(&shown, format!("mkdir: {e}")))?;
                    }
                    let fd = openat(
                        &dir,
                        name,
                        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| self.err(&shown, format!("opening: {e}")))?;
                    self.set_meta_fd(&shown, &fd, uid, gid, mode)?;
                    self.dirs.push((comps.clone(), mtime));
                }
                t if t.is_file() || t == tar::EntryType::Continuous || t.is_gnu_sparse() => {
                    if existing.is_some() {
                        self.remove_at(&shown, &dir, name)?;
                    }
                    let fd = openat(
                        &dir,
                        name,
                        OFlag::O_WRONLY
                            | OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o600),
                    )
                    .map_err(|e| self.err(&shown, format!("creating: {e}")))?;
                    let mut f = File::from(fd);
                    io::copy(&mut entry, &mut f)
                        .map_err(|e| self.err(&shown, format!("writing: {e}")))?;
                    self.set_meta_fd(&shown, &f, uid, gid, mode)?;
                    let t = TimeSpec::new(mtime, 0);
                    futimens(&f, &t, &t).map_err(|e| self.err(&shown, format!("utimes: {e}")))?;
                }
                t if t.is_symlink() => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| self.err(&shown, "symlink without a target"))?;
                    let target = std::ffi::OsStr::from_bytes(&target);
                    if existing.is_some() {
                        self.remove_at(&shown, &dir, name)?;
                    }
                    symlinkat(target, &dir, name)
                        .map_err(|e| self.err(&shown, format!("symlink: {e}")))?;
                    self.chown_at(&shown, &dir, name, uid, gid)?;
                    let t = TimeSpec::new(mtime, 0);
                    utimensat(&dir, name, &t, &t, UtimensatFlags::NoFollowSymlink)
                        .map_err(|e| self.err(&shown, format!("utimes: {e}")))?;
                }
                t if t.is_hard_link() => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| self.err(&shown, "hardlink without a target"))?;
                    let tshown = String::from_utf8_lossy(&target).into_owned();
                    let tcomps = clean_entry_path(&target)
                        .map_err(|r| self.err(&shown, format!("hardlink target {tshown:?} {r}")))?;
                    let Some((tname, tparent)) = tcomps.split_last() else {
                        return Err(self.err(&shown, "hardlink to the root"));
                    };
                    let tdir = self.open_dir(&shown, tparent, false)?.ok_or_else(|| {
                        self.err(&shown, format!("hardlink target {tshown:?} does not exist"))
                    })?;
                    if tcomps == comps {
                        continue;
                    }
                    if existing.is_some() {
                        self.remove_at(&shown, &dir, name)?;
                    }
                    linkat(&tdir, tname.as_str(), &dir, name, AtFlags::empty()).map_err(
                        |e| match e {
                            Errno::ENOENT => self
                                .err(&shown, format!("hardlink target {tshown:?} does not exist")),
                            e => self.err(&shown, format!("hardlink to {tshown:?}: {e}")),
                        },
                    )?;
                }
                tar::EntryType::Fifo => {
                    if existing.is_some() {
                        self.remove_at(&shown, &dir, name)?;
                    }
                    mkfifoat(&dir, name, Mode::from_bits_truncate(mode))
                        .map_err(|e| self.err(&shown, format!("mkfifo: {e}")))?;
                    self.chown_at(&shown, &dir, name, uid, gid)?;
                    let fd = openat(
                        &dir,
                        name,
                        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| self.err(&shown, e))?;
                    // chmod of an O_PATH descriptor goes through /proc.
                    use std::os::fd::AsRawFd;
                    fs::set_permissions(
                        format!("/proc/self/fd/{}", fd.as_raw_fd()),
                        std::os::unix::fs::PermissionsExt::from_mode(mode),
                    )
                    .map_err(|e| self.err(&shown, format!("chmod: {e}")))?;
                }
                tar::EntryType::Char | tar::EntryType::Block => {
                    tracing::warn!(
                        "{}: {}: device node {shown:?} not created",
                        self.ctx.archive.display(),
                        self.part
                    );
                    continue;
                }
                other => {
                    tracing::warn!(
                        "{}: {}: entry {shown:?} of type {other:?} skipped",
                        self.ctx.archive.display(),
                        self.part
                    );
                    continue;
                }
            }
            let mut key = String::new();
            for c in &comps {
                if !key.is_empty() {
                    key.push('/');
                }
                key.push_str(c);
                self.written.insert(key.clone());
            }
        }
        // Directory times last: creating their entries changed them.
        for (comps, mtime) in self.dirs.iter().rev() {
            let t = TimeSpec::new(*mtime, 0);
            match comps.split_last() {
                None => {
                    let _ = futimens(self.root, &t, &t);
                }
                Some((name, parent)) => {
                    if let Ok(Some(dir)) = self.open_dir("", parent, false) {
                        let _ =
                            utimensat(&dir, name.as_str(), &t, &t, UtimensatFlags::NoFollowSymlink);
                    }
                }
            }
        }
        Ok(())
    }

    fn set_meta_fd(
        &self,
        entry: &str,
        fd: &impl AsFd,
        uid: u32,
        gid: u32,
        mode: u32,
    ) -> Result<(), ImageError> {
        match fchown(
            fd.as_fd(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
        ) {
            Ok(()) => {}
            Err(Errno::EPERM) if !nix::unistd::geteuid().is_root() => {}
            Err(e) => return Err(self.err(entry, format!("chown: {e}"))),
        }
        // After chown, which clears set-user-id and set-group-id bits.
        fchmod(fd.as_fd(), Mode::from_bits_truncate(mode))
            .map_err(|e| self.err(entry, format!("chmod: {e}")))
    }

    /// `.wh.NAME`: removes NAME of the lower layers.
    fn whiteout(&self, entry: &str, parent: &[String], hidden: &str) -> Result<(), ImageError> {
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(self.err(entry, "whiteout of no name"));
        }
        let mut key = parent.join("/");
        if !key.is_empty() {
            key.push('/');
        }
        key.push_str(hidden);
        if self.written.contains(&key) {
            return Ok(());
        }
        if let Some(dir) = self.open_dir(entry, parent, false)? {
            self.remove_at(entry, &dir, hidden)?;
        }
        Ok(())
    }

    /// `.wh..wh..opq`: empties the directory of what the lower layers put there.
    fn opaque(&self, entry: &str, parent: &[String]) -> Result<(), ImageError> {
        let Some(dir) = self.open_dir(entry, parent, true)? else {
            return Ok(());
        };
        let prefix = if parent.is_empty() {
            String::new()
        } else {
            format!("{}/", parent.join("/"))
        };
        // `dir` was resolved inside the root; /proc/self/fd/N names that directory.
        use std::os::fd::AsRawFd;
        let listing = fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))
            .map_err(|e| self.err(entry, format!("listing: {e}")))?;
        let mut names: Vec<String> = Vec::new();
        for e in listing {
            let e = e.map_err(|e| self.err(entry, format!("listing: {e}")))?;
            let n = e.file_name().to_string_lossy().into_owned();
            if !self.written.contains(&format!("{prefix}{n}")) {
                names.push(n);
            }
        }
        for n in names {
            self.remove_at(entry, &dir, &n)?;
        }
        Ok(())
    }
}

/// The components of a layer entry's path below the root, or why it is refused.
fn clean_entry_path(raw: &[u8]) -> Result<Vec<String>, String> {
    let s = String::from_utf8_lossy(raw);
    if s.starts_with('/') {
        return Err("is an absolute path".into());
    }
    if raw.contains(&0) {
        return Err("contains a NUL byte".into());
    }
    let mut out: Vec<String> = Vec::new();
    for c in Path::new(std::ffi::OsStr::from_bytes(raw)).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err("escapes the root".into());
                }
            }
            Component::Normal(n) => {
                let n = n.to_str().ok_or_else(|| "is not UTF-8".to_string())?;
                out.push(n.to_string());
            }
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path".into()),
        }
    }
    Ok(out)
}

/// Bytes of the regular files under `root` (each inode once), not following symlinks.
fn tree_size(root: &Path) -> io::Result<u64> {
    let mut total = 0u64;
    let mut seen = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let m = e.metadata()?;
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && (m.nlink() <= 1 || seen.insert((m.dev(), m.ino()))) {
                total += m.len();
            }
        }
    }
    Ok(total)
}

/// Copies the contents of directory `src` into the existing directory `dst`: modes,
/// owners, modification times, symlinks (as symlinks), hardlinks (as hardlinks), fifos;
/// device nodes and sockets are left out.
fn copy_tree(src: &Path, dst: &Path) -> Result<(), ImageError> {
    let serr = |p: &Path, e: io::Error| ImageError::Source {
        path: p.to_path_buf(),
        reason: e.to_string(),
    };
    let root_meta = fs::symlink_metadata(src).map_err(|e| serr(src, e))?;
    let mut dirs = vec![(dst.to_path_buf(), root_meta.clone())];
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut stack = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((s, d)) = stack.pop() {
        for e in fs::read_dir(&s).map_err(|e| serr(&s, e))? {
            let e = e.map_err(|e| serr(&s, e))?;
            let sp = e.path();
            let dp = d.join(e.file_name());
            let m = fs::symlink_metadata(&sp).map_err(|e| serr(&sp, e))?;
            let ft = m.file_type();
            if ft.is_dir() {
                fs::create_dir(&dp).map_err(|e| serr(&dp, e))?;
                dirs.push((dp.clone(), m));
                stack.push((sp, dp));
                continue;
            }
            if ft.is_file() {
                if m.nlink() > 1 {
                    if let Some(first) = links.get(&(m.dev(), m.ino())) {
                        fs::hard_link(first, &dp).map_err(|e| serr(&dp, e))?;
                        continue;
                    }
                    links.insert((m.dev(), m.ino()), dp.clone());
                }
                fs::copy(&sp, &dp).map_err(|e| serr(&sp, e))?;
            } else if ft.is_symlink() {
                let t = fs::read_link(&sp).map_err(|e| serr(&sp, e))?;
                std::os::unix::fs::symlink(&t, &dp).map_err(|e| serr(&dp, e))?;
            } else if ft.is_fifo() {
                nix::unistd::mkfifo(&dp, Mode::from_bits_truncate(m.mode() & 0o7777))
                    .map_err(|e| serr(&dp, e.into()))?;
            } else {
                tracing::warn!(
                    "import_dir: {} (a device or socket) not copied",
                    sp.display()
                );
                continue;
            }
            set_path_meta(&dp, &m).map_err(|e| serr(&dp, e))?;
        }
    }
    for (d, m) in dirs.iter().rev() {
        set_path_meta(d, m).map_err(|e| serr(d, e))?;
    }
    Ok(())
}

/// Owner, mode (not of a symlink) and modification time of `meta` on `path` (not
/// following a symlink).
fn set_path_meta(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    match std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid())) {
        Ok(()) => {}
        Err(e)
            if e.kind() == io::ErrorKind::PermissionDenied && !nix::unistd::geteuid().is_root() => {
        }
        Err(e) => return Err(e),
    }
    if !meta.file_type().is_symlink() {
        fs::set_permissions(
            path,
            std::os::unix::fs::PermissionsExt::from_mode(meta.mode() & 0o7777),
        )?;
    }
    let t = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(AT_FDCWD, path, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_references() {
        let ok = [
            ("busybox", "busybox:latest"),
            ("busybox:1.36", "busybox:1.36"),
            ("docker.io/library/busybox:1.36", "busybox:1.36"),
            ("library/busybox", "busybox:latest"),
            ("docker.io/user/app", "user/app:latest"),
            ("index.docker.io/user/app:v1", "user/app:v1"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("registry.example.com/a/b-c__d.e:T_1", "registry.example.com/a/b-c__d.e:T_1"),
            (
                "busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ),
            (
                "docker.io/library/busybox:1@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "busybox:1@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ),
        ];
        for (r, want) in ok {
            assert_eq!(normalize(r).unwrap(), want, "{r}");
            assert_eq!(normalize(want).unwrap(), want, "idempotent {want}");
        }
        for bad in [
            "",
            " ",
            "Busybox",
            "busybox:",
            ":tag",
            "a//b",
            "a/",
            "-a",
            "a..b",
            "busybox@sha256:12",
            "busybox@md5:00",
            "busybox:-x",
            "bad host/x",
            "a b",
            "../x",
            "x/../y",
            ".",
        ] {
            let e = normalize(bad).unwrap_err();
            assert!(
                e.to_string().contains("invalid image reference"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn escapes_round_trip() {
        for r in ["busybox:latest", "a/b%c:t", "localhost:5000/x/y:z"] {
            let e = escape(r);
            assert!(!e.contains('/'));
            assert_eq!(unescape(&e).as_deref(), Some(r));
        }
        assert_eq!(unescape("a%2"), None);
    }

    #[test]
    fn entry_paths() {
        assert_eq!(clean_entry_path(b"./a/b/").unwrap(), vec!["a", "b"]);
        assert_eq!(clean_entry_path(b"a/../b").unwrap(), vec!["b"]);
        assert!(clean_entry_path(b"./").unwrap().is_empty());
        assert_eq!(
            clean_entry_path(b"../../etc/passwd").unwrap_err(),
            "escapes the root"
        );
        assert_eq!(
            clean_entry_path(b"a/../../b").unwrap_err(),
            "escapes the root"
        );
        assert_eq!(
            clean_entry_path(b"/etc/passwd").unwrap_err(),
            "is an absolute path"
        );
        assert_eq!(
            clean_archive_path("./blobs//sha256/x"),
            Some("blobs/sha256/x".into())
        );
        assert_eq!(clean_archive_path("../x"), None);
    }
}

//! Test images for the node agent: a minimal busybox root filesystem (the host's static
//! `/bin/busybox`, from Debian's busybox-static), OCI image layout archives of it, and
//! Docker images made from it with `docker import` (removed when their guard drops).
//!
//! Include with `#[path = "support/images.rs"] mod images;` (needs the `agent` feature:
//! tar, flate2, ring).
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The busybox applets linked in `/bin` of [`busybox_rootfs`].
pub const APPLETS: &[&str] = &[
    "sh",
    "ash",
    "ls",
    "cat",
    "echo",
    "sleep",
    "httpd",
    "wget",
    "ps",
    "top",
    "yes",
    "head",
    "tail",
    "dd",
    "grep",
    "env",
    "id",
    "hostname",
    "mkdir",
    "rm",
    "touch",
    "true",
    "false",
    "kill",
    "nc",
    "printf",
    "test",
    "[",
    "wc",
    "cp",
    "mv",
    "ln",
    "chmod",
    "chown",
    "date",
    "df",
    "du",
    "find",
    "free",
    "mount",
    "umount",
    "seq",
    "sort",
    "uniq",
    "tr",
    "cut",
    "sed",
    "awk",
    "xargs",
    "tee",
    "pwd",
    "uname",
    "whoami",
    "stat",
    "timeout",
    "nslookup",
    "ping",
    "ifconfig",
    "ip",
    "netstat",
    "vi",
    "md5sum",
    "sha256sum",
    "base64",
    "gzip",
    "gunzip",
    "tar",
    "pidof",
    "pgrep",
    "pkill",
    "nproc",
    "usleep",
    "watch",
    "basename",
    "dirname",
    "readlink",
    "realpath",
    "which",
    "expr",
    "less",
    "more",
    "uptime",
    "dmesg",
    "init",
];

/// Writes a minimal root filesystem into `dir` (created if missing): `/bin/busybox`
/// copied from the host with a symlink per applet of [`APPLETS`], `/etc/passwd` and
/// `/etc/group` (root and nobody), `/tmp` (1777), empty `/proc`, `/dev`, `/sys`, `/root`,
/// `/var`, `/home`.
pub fn busybox_rootfs(dir: &Path) {
    for d in [
        "bin", "etc", "tmp", "proc", "dev", "sys", "root", "var", "home", "usr/bin",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(dir.join("root"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let busybox = dir.join("bin/busybox");
    std::fs::copy("/bin/busybox", &busybox)
        .expect("/bin/busybox (Debian's busybox-static: `make deps` installs it)");
    std::fs::set_permissions(&busybox, std::fs::Permissions::from_mode(0o755)).unwrap();
    for a in APPLETS {
        let link = dir.join("bin").join(a);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("busybox", &link).unwrap();
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    std::fs::write(dir.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
}

/// The parts of an image config the tests set.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env` (`NAME=value`).
    pub env: Vec<String>,
    /// `WorkingDir` (created in the image when set).
    pub working_dir: String,
}

impl ImageSpec {
    /// An image that runs `cmd` (no entrypoint).
    pub fn cmd(cmd: &[&str]) -> Self {
        ImageSpec {
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }
}

/// A directory under the system temp dir, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "plimsoll-images-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tar stream of the contents of `dir` (paths relative to it, symlinks as symlinks,
/// owners and modes kept).
pub fn tar_of_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

/// gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Uncompressed bytes of a layer (gunzipped when gzip).
pub fn uncompressed(layer: &[u8]) -> Vec<u8> {
    if layer.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(layer), &mut out).unwrap();
        out
    } else {
        layer.to_vec()
    }
}

/// An image config (`application/vnd.oci.image.config.v1+json`) for these layers.
pub fn config_json(spec: &ImageSpec, layers: &[Vec<u8>]) -> serde_json::Value {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(&uncompressed(l))))
        .collect();
    serde_json::json!({
        "architecture": host_arch(),
        "os": "linux",
        "config": {
            "Entrypoint": if spec.entrypoint.is_empty() { serde_json::Value::Null } else { serde_json::json!(spec.entrypoint) },
            "Cmd": if spec.cmd.is_empty() { serde_json::Value::Null } else { serde_json::json!(spec.cmd) },
            "Env": spec.env,
            "WorkingDir": spec.working_dir,
        },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    })
}

/// This machine's architecture as OCI names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The files of an OCI image layout holding one image: `oci-layout`, `index.json` (with
/// the `org.opencontainers.image.ref.name` annotation when `name` is given), the
/// manifest, the config and the layers (gzip ones typed `tar+gzip`) under
/// `blobs/sha256/`. Returned as `(path, content)` so that tests can tamper with them
/// before [`write_tar`].
pub fn oci_layout_files(
    name: Option<&str>,
    config: &serde_json::Value,
    layers: &[Vec<u8>],
) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let blob = |files: &mut Vec<(String, Vec<u8>)>, bytes: Vec<u8>| -> (String, usize) {
        let hex = sha256_hex(&bytes);
        let len = bytes.len();
        if !files
            .iter()
            .any(|(p, _)| *p == format!("blobs/sha256/{hex}"))
        {
            files.push((format!("blobs/sha256/{hex}"), bytes));
        }
        (format!("sha256:{hex}"), len)
    };
    let (cdigest, csize) = blob(&mut files, serde_json::to_vec(config).unwrap());
    let mut layer_descs = Vec::new();
    for l in layers {
        let media = if l.starts_with(&[0x1f, 0x8b]) {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        let (d, s) = blob(&mut files, l.clone());
        layer_descs.push(serde_json::json!({ "mediaType": media, "digest": d, "size": s }));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": csize },
        "layers": layer_descs,
    });
    let (mdigest, msize) = blob(&mut files, serde_json::to_vec(&manifest).unwrap());
    let mut desc = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": mdigest,
        "size": msize,
        "platform": { "architecture": host_arch(), "os": "linux" },
    });
    if let Some(n) = name {
        desc["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": n });
    }
    let index = serde_json::json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [desc] });
    files.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    files.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
    files
}

/// Writes `files` as a tar archive at `out` (parent directories implied).
pub fn write_tar(out: &Path, files: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    b.finish().unwrap();
}

/// Writes an OCI image layout archive of a busybox image at `out`, named `name` (the
/// `org.opencontainers.image.ref.name` annotation), with two layers: the
/// [`busybox_rootfs`] (gzip) and a plain one adding `/etc/plimsoll-image` (holding
/// `name`) and the working directory.
pub fn busybox_oci_archive(out: &Path, name: &str, spec: &ImageSpec) {
    let files = busybox_oci_files(Some(name), spec);
    write_tar(out, &files);
}

/// The files of [`busybox_oci_archive`] (`name` `None`: no ref.name annotation).
pub fn busybox_oci_files(name: Option<&str>, spec: &ImageSpec) -> Vec<(String, Vec<u8>)> {
    let layers = busybox_layers(name.unwrap_or("unnamed"), spec);
    let config = config_json(spec, &layers);
    oci_layout_files(name, &config, &layers)
}

/// The two layers of [`busybox_oci_archive`].
pub fn busybox_layers(name: &str, spec: &ImageSpec) -> Vec<Vec<u8>> {
    let scratch = Scratch::new("rootfs");
    busybox_rootfs(&scratch);
    let base = gzip(&tar_of_dir(&scratch));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(name.len() as u64 + 1);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "etc/plimsoll-image", format!("{name}\n").as_bytes())
        .unwrap();
    let wd = spec.working_dir.trim_matches('/');
    if !wd.is_empty() {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o755);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Directory);
        b.append_data(&mut h, format!("{wd}/"), std::io::empty())
            .unwrap();
    }
    vec![base, b.into_inner().unwrap()]
}

/// A Docker image made with `docker import`; `docker rmi -f` when dropped.
pub struct DockerImage {
    /// Its tag.
    pub tag: String,
}

impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.tag])
            .output();
    }
}

/// Whether a Docker daemon answers.
pub fn docker_available() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `docker import` of the [`busybox_rootfs`] as `tag`, with `CMD ["sh"]`.
pub fn docker_import_busybox(tag: &str) -> DockerImage {
    docker_import_busybox_with(tag, &ImageSpec::cmd(&["sh"]))
}

/// `docker import` of the [`busybox_rootfs`] as `tag`, with the entrypoint, cmd, env and
/// working directory of `spec` (`--change`).
pub fn docker_import_busybox_with(tag: &str, spec: &ImageSpec) -> DockerImage {
    let scratch = Scratch::new("docker-import");
    let rootfs = scratch.join("rootfs");
    busybox_rootfs(&rootfs);
    let wd = spec.working_dir.trim_matches('/');
    if !wd.is_empty() {
        std::fs::create_dir_all(rootfs.join(wd)).unwrap();
    }
    let archive = scratch.join("rootfs.tar");
    std::fs::write(&archive, tar_of_dir(&rootfs)).unwrap();
    let mut cmd = Command::new("docker");
    cmd.arg("import");
    if !spec.entrypoint.is_empty() {
        cmd.args([
            "--change",
            &format!(
                "ENTRYPOINT {}",
                serde_json::to_string(&spec.entrypoint).unwrap()
            ),
        ]);
    }
    if !spec.cmd.is_empty() {
        cmd.args([
            "--change",
            &format!("CMD {}", serde_json::to_string(&spec.cmd).unwrap()),
        ]);
    }
    for e in &spec.env {
        cmd.args(["--change", &format!("ENV {e}")]);
    }
    if !spec.working_dir.is_empty() {
        cmd.args(["--change", &format!("WORKDIR {}", spec.working_dir)]);
    }
    let out = cmd
        .arg(&archive)
        .arg(tag)
        .output()
        .expect("running docker import");
    let image = DockerImage {
        tag: tag.to_string(),
    };
    assert!(
        out.status.success(),
        "docker import {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    image
}

//! The process runtime's image store: OCI image layouts and `docker save` archives
//! imported into root filesystems (layers, whiteouts, links, owners, modes, times),
//! plain-directory images, hostile archives refused without writing outside the store,
//! a chroot into an imported image, and the `plimsoll image` command.

#[path = "support/images.rs"]
mod images;

use images::{gzip, oci_layout_files, sha256_hex, write_tar, ImageSpec, Scratch};
use plimsoll::agent::image::{normalize, ImageError, ImageStore};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

/// A layer written entry by entry (names written raw, so hostile ones too).
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Self {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn header(name: &str, ty: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        // Raw name bytes: `set_path` refuses `..`, which hostile archives carry.
        let n = &mut h.as_old_mut().name;
        n.fill(0);
        n[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(ty);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h
    }

    fn append(&mut self, mut h: tar::Header, data: &[u8]) {
        h.set_cksum();
        self.0.append(&h, data).unwrap();
    }

    fn dir(mut self, name: &str, mode: u32) -> Self {
        self.append(Self::header(name, tar::EntryType::Directory, mode, 0), b"");
        self
    }

    fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.append(
            Self::header(name, tar::EntryType::Regular, 0o644, data.len() as u64),
            data,
        );
        self
    }

    fn file_owned(
        mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
    ) -> Self {
        let mut h = Self::header(name, tar::EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        self.append(h, data);
        self
    }

    fn link(mut self, ty: tar::EntryType, name: &str, target: &str) -> Self {
        let mut h = Self::header(name, ty, 0o777, 0);
        let l = &mut h.as_old_mut().linkname;
        l.fill(0);
        l[..target.len()].copy_from_slice(target.as_bytes());
        self.append(h, b"");
        self
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.link(tar::EntryType::Symlink, name, target)
    }

    fn hardlink(self, name: &str, target: &str) -> Self {
        self.link(tar::EntryType::Link, name, target)
    }

    fn fifo(mut self, name: &str) -> Self {
        self.append(Self::header(name, tar::EntryType::Fifo, 0o600, 0), b"");
        self
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// An archive's files, `(path, content)`.
type Files = Vec<(String, Vec<u8>)>;

fn spec() -> ImageSpec {
    ImageSpec {
        entrypoint: vec!["/bin/sh".into(), "-c".into()],
        cmd: vec!["echo hello".into()],
        env: vec!["PATH=/bin:/usr/bin".into(), "GREETING=hi there".into()],
        working_dir: "/work".into(),
    }
}

/// An OCI archive of `layers` at `dir/NAME.tar`.
fn oci_archive(
    dir: &Path,
    file: &str,
    name: Option<&str>,
    layers: &[Vec<u8>],
) -> std::path::PathBuf {
    let config = images::config_json(&spec(), layers);
    let out = dir.join(file);
    write_tar(&out, &oci_layout_files(name, &config, layers));
    out
}

/// Nothing but images in the store: no work directory left behind.
fn assert_no_leftovers(store: &ImageStore) {
    let left: Vec<_> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        left.is_empty(),
        "work directories left in the store: {left:?}"
    );
}

#[test]
fn oci_layers_whiteouts_links_owners_modes_times() {
    let tmp = Scratch::new("oci");
    let store = ImageStore::open(tmp.join("store")).unwrap();
    let lower = Layer::new()
        .dir("./", 0o755)
        .dir("bin/", 0o755)
        .dir("etc/", 0o755)
        .file("etc/removed", b"gone soon")
        .file("etc/kept", b"kept")
        .dir("gone/", 0o755)
        .file("gone/x", b"x")
        .dir("opq/", 0o750)
        .file("opq/old", b"old")
        .dir("opq/sub/", 0o755)
        .file("opq/sub/old2", b"old2")
        .file_owned("a.txt", b"alpha", 0o640, 1234, 5678, 1_000_000)
        .file_owned("bin/suid", b"#!/bin/sh\n", 0o4755, 0, 0, 1_000_000)
        .symlink("link", "a.txt")
        .symlink("abs", "/etc/kept")
        .hardlink("hard", "a.txt")
        .fifo("pipe")
        .dir("usr/", 0o755)
        .dir("usr/lib/", 0o755)
        .symlink("lib", "/usr/lib")
        .bytes();
    let upper = Layer::new()
        .file(".wh.gone", b"")
        .file("etc/.wh.removed", b"")
        .file("opq/new", b"new")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/after", b"after")
        .hardlink("opq/new-link", "opq/new")
        .file("lib/libx.so", b"through the lib symlink")
        .file("a.txt", b"alpha replaced")
        .bytes();
    let layers = vec![gzip(&lower), upper];
    let archive = oci_archive(
        &tmp,
        "layers.tar",
        Some("example.com/test/layers:v1"),
        &layers,
    );

    let imported = store.import(&archive, None).unwrap();
    assert_eq!(imported.len(), 1);
    let img = &imported[0];
    assert_eq!(img.reference, "example.com/test/layers:v1");
    let config_bytes = serde_json::to_vec(&images::config_json(&spec(), &layers)).unwrap();
    assert_eq!(img.id, format!("sha256:{}", sha256_hex(&config_bytes)));
    assert_eq!(img.config.entrypoint, vec!["/bin/sh", "-c"]);
    assert_eq!(img.config.cmd, vec!["echo hello"]);
    assert_eq!(
        img.config.env,
        vec!["PATH=/bin:/usr/bin", "GREETING=hi there"]
    );
    assert_eq!(img.config.working_dir, "/work");
    assert_eq!(
        store
            .resolve("example.com/test/layers:v1")
            .unwrap()
            .as_ref(),
        Some(img)
    );
    assert_eq!(store.list().unwrap(), vec![img.clone()]);

    let r = &img.rootfs;
    assert_eq!(
        r,
        &store.dir().join("example.com%2Ftest%2Flayers:v1/rootfs")
    );
    // Whiteouts: a directory, a file, an opaque directory (this layer's entries kept).
    assert!(!r.join("gone").exists());
    assert!(!r.join("etc/removed").exists());
    assert_eq!(std::fs::read(r.join("etc/kept")).unwrap(), b"kept");
    assert!(!r.join(".wh.gone").exists() && !r.join("etc/.wh.removed").exists());
    let mut opq: Vec<_> = std::fs::read_dir(r.join("opq"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    opq.sort();
    assert_eq!(opq, vec!["after", "new", "new-link"]);
    assert_eq!(
        std::fs::metadata(r.join("opq")).unwrap().mode() & 0o7777,
        0o750
    );
    // Hardlinks share the inode.
    assert_eq!(
        std::fs::metadata(r.join("opq/new")).unwrap().ino(),
        std::fs::metadata(r.join("opq/new-link")).unwrap().ino()
    );
    // The upper a.txt replaced the file; the lower hardlink still holds the old content.
    assert_eq!(std::fs::read(r.join("a.txt")).unwrap(), b"alpha replaced");
    let hard = std::fs::metadata(r.join("hard")).unwrap();
    assert_eq!(std::fs::read(r.join("hard")).unwrap(), b"alpha");
    assert_eq!(
        (hard.uid(), hard.gid(), hard.mode() & 0o7777, hard.mtime()),
        (1234, 5678, 0o640, 1_000_000)
    );
    // Modes (set-user-id kept after chown), symlinks as written, a fifo.
    assert_eq!(
        std::fs::metadata(r.join("bin/suid")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        std::fs::read_link(r.join("link")).unwrap(),
        Path::new("a.txt")
    );
    assert_eq!(
        std::fs::read_link(r.join("abs")).unwrap(),
        Path::new("/etc/kept")
    );
    assert!(std::fs::symlink_metadata(r.join("pipe"))
        .unwrap()
        .file_type()
        .is_fifo());
    // An absolute symlink to a directory is followed inside the root.
    assert_eq!(
        std::fs::read(r.join("usr/lib/libx.so")).unwrap(),
        b"through the lib symlink"
    );
    assert!(std::fs::symlink_metadata(r.join("lib"))
        .unwrap()
        .file_type()
        .is_symlink());
    // Directory times are the layer's, set after their entries were written.
    assert_eq!(
        std::fs::metadata(r.join("bin")).unwrap().mtime(),
        1_600_000_000
    );
    // Size: the regular files' bytes, each inode once.
    let files: u64 = [
        &b"kept"[..],
        b"new",
        b"after",
        b"through the lib symlink",
        b"alpha replaced",
        b"alpha",
        b"#!/bin/sh\n",
    ]
    .iter()
    .map(|b| b.len() as u64)
    .sum();
    assert_eq!(img.size, files);
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            store
                .dir()
                .join("example.com%2Ftest%2Flayers:v1/image.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json["id"], img.id.as_str());
    assert_eq!(json["size"], img.size);
    assert_no_leftovers(&store);
}

#[test]
fn busybox_oci_archive_runs_in_a_chroot_and_reimport_replaces() {
    let tmp = Scratch::new("chroot");
    let store = ImageStore::open(tmp.join("store")).unwrap();
    let archive = tmp.join("busybox.tar");
    images::busybox_oci_archive(&archive, "busybox:test", &ImageSpec::cmd(&["sh"]));
    let img = store.import(&archive, None).unwrap().remove(0);
    assert_eq!(img.reference, "busybox:test");
    assert_eq!(img.config.cmd, vec!["sh"]);
    assert!(img.size >= std::fs::metadata("/bin/busybox").unwrap().len());
    let out = Command::new("chroot")
        .arg(&img.rootfs)
        .args(["/bin/busybox", "echo", "hi"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hi\n");
    let out = Command::new("chroot")
        .arg(&img.rootfs)
        .args([
            "/bin/sh",
            "-c",
            "cat /etc/plimsoll-image; ls -ld /tmp | cut -c1-10",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "busybox:test\ndrwxrwxrwt\n"
    );

    // The same archive gzip-compressed, under another name given on the command line,
    // then again under the first name: the re-import replaces the image.
    let gz = tmp.join("busybox.tar.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&archive).unwrap())).unwrap();
    let other = store
        .import(&gz, Some("docker.io/library/bb"))
        .unwrap()
        .remove(0);
    assert_eq!(other.reference, "bb:latest");
    assert_eq!(other.id, img.id);
    std::fs::write(img.rootfs.join("marker"), b"from the first import").unwrap();
    let again = store.import(&gz, Some("busybox:test")).unwrap().remove(0);
    assert_eq!(again.rootfs, img.rootfs);
    assert!(
        !again.rootfs.join("marker").exists(),
        "the re-import replaced the tree"
    );
    let refs: Vec<_> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|i| i.reference)
        .collect();
    assert_eq!(refs, vec!["bb:latest", "busybox:test"]);
    assert!(store.remove("bb").unwrap());
    assert!(!store.remove("bb").unwrap());
    assert_eq!(store.resolve("bb").unwrap(), None);
    assert_no_leftovers(&store);
}

#[test]
fn docker_save_of_a_docker_import() {
    assert!(
        images::docker_available(),
        "these tests need the Docker daemon"
    );
    let tmp = Scratch::new("docker");
    let store = ImageStore::open(tmp.join("store")).unwrap();
    let tag = format!("plimsoll-test-image:h1-{}", std::process::id());
    let spec = ImageSpec {
        entrypoint: vec![],
        cmd: vec!["sh".into()],
        env: vec!["FOO=bar".into()],
        working_dir: "/srv".into(),
    };
    let image = images::docker_import_busybox_with(&tag, &spec);
    let archive = tmp.join("saved.tar");
    let out = Command::new("docker")
        .args(["save", "-o"])
        .arg(&archive)
        .arg(&image.tag)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker save: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &image.tag])
        .output()
        .unwrap();
    let id = String::from_utf8(id.stdout).unwrap().trim().to_string();
    drop(image);

    let img = store.import(&archive, None).unwrap().remove(0);
    assert_eq!(img.reference, tag);
    assert_eq!(img.id, id, "the id is Docker's (the config digest)");
    assert_eq!(img.config.cmd, vec!["sh"]);
    assert!(
        img.config.env.contains(&"FOO=bar".to_string()),
        "{:?}",
        img.config.env
    );
    assert_eq!(img.config.working_dir, "/srv");
    assert!(img.rootfs.join("srv").is_dir());
    let out = Command::new("chroot")
        .arg(&img.rootfs)
        .args(["/bin/echo", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"hi\n");
    assert_no_leftovers(&store);
}

#[test]
fn newer_docker_save_layout_with_blobs() {
    // Docker 25+ writes manifest.json whose Config and Layers are OCI blobs, beside an
    // OCI index.json; manifest.json's RepoTags name the image.
    let tmp = Scratch::new("docker-blobs");
    let store = ImageStore::open(tmp.join("store")).unwrap();
    let layers = images::busybox_layers("new-docker", &ImageSpec::default());
    let layers = vec![images::uncompressed(&layers[0]), layers[1].clone()];
    let config = images::config_json(&ImageSpec::cmd(&["sh"]), &layers);
    let mut files = oci_layout_files(None, &config, &layers);
    let config_hex = sha256_hex(&serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!([{
        "Config": format!("blobs/sha256/{config_hex}"),
        "RepoTags": ["docker.io/library/newdocker:1", "newdocker:alias"],
        "Layers": layers.iter().map(|l| format!("blobs/sha256/{}", sha256_hex(l))).collect::<Vec<_>>(),
    }]);
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    let archive = tmp.join("new.tar");
    write_tar(&archive, &files);
    let imported = store.import(&archive, None).unwrap();
    let refs: Vec<_> = imported.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(refs, vec!["newdocker:1", "newdocker:alias"]);
    assert_ne!(imported[0].rootfs, imported[1].rootfs);
    for img in &imported {
        assert_eq!(
            std::fs::read(img.rootfs.join("etc/plimsoll-image")).unwrap(),
            b"new-docker\n"
        );
        assert_eq!(img.config.cmd, vec!["sh"]);
    }
    assert_no_leftovers(&store);
}

#[test]
fn plain_directory_images() {
    let tmp = Scratch::new("plain");
    let store = ImageStore::open(tmp.join("store")).unwrap();
    // A rootfs/ laid by hand (no image.json) is an image with the default config.
    let dir = store.dir().join("busybox:latest");
    images::busybox_rootfs(&dir.join("rootfs"));
    let img = store
        .resolve("docker.io/library/busybox")
        .unwrap()
        .expect("the plain directory");
    assert_eq!(img.reference, "busybox:latest");
    assert_eq!(img.config, Default::default());
    assert_eq!(img.id, format!("sha256:{}", sha256_hex(b"busybox:latest")));
    let passwd = std::fs::metadata(dir.join("rootfs/etc/passwd"))
        .unwrap()
        .len();
    assert!(img.size > std::fs::metadata("/bin/busybox").unwrap().len() + passwd);
    assert_eq!(store.resolve("busybox:other").unwrap(), None);

    // import_dir copies a tree in, keeping symlinks, modes and hardlinks.
    let src = tmp.join("src");
    images::busybox_rootfs(&src);
    std::fs::hard_link(src.join("etc/passwd"), src.join("etc/passwd.link")).unwrap();
    let copied = store.import_dir(&src, "local/bb:1").unwrap();
    assert_eq!(copied.reference, "local/bb:1");
    let r = &copied.rootfs;
    assert_eq!(
        std::fs::read_link(r.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        std::fs::metadata(r.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    assert_eq!(
        std::fs::metadata(r.join("etc/passwd")).unwrap().ino(),
        std::fs::metadata(r.join("etc/passwd.link")).unwrap().ino()
    );
    assert_eq!(store.resolve("local/bb:1").unwrap(), Some(copied.clone()));
    assert_eq!(store.list().unwrap().len(), 2);
    let e = store.import_dir(&tmp.join("missing"), "x").unwrap_err();
    assert!(matches!(e, ImageError::Source { .. }), "{e}");
    assert_no_leftovers(&store);
}

#[test]
fn references_normalise() {
    assert_eq!(normalize("busybox").unwrap(), "busybox:latest");
    assert_eq!(normalize("docker.io/library/x:t").unwrap(), "x:t");
    assert_eq!(normalize("docker.io/user/x").unwrap(), "user/x:latest");
    let d = format!("x@sha256:{}", "a".repeat(64));
    assert_eq!(normalize(&d).unwrap(), d);
    for bad in ["", "UPPER", "x:", "x@sha256:abc", "a b"] {
        assert!(
            matches!(normalize(bad), Err(ImageError::InvalidReference { .. })),
            "{bad:?}"
        );
    }
}

/// Imports `archive` expecting an error whose message contains every one of `want`;
/// the store is left with no image and no work directory, and `outside` is unchanged.
fn refused(store: &ImageStore, archive: &Path, name: Option<&str>, outside: &Path, want: &[&str]) {
    let before = listing(outside);
    let e = store
        .import(archive, name)
        .expect_err("a hostile or broken archive is refused");
    let msg = e.to_string();
    assert!(
        msg.contains(&archive.display().to_string()),
        "the message names the archive: {msg}"
    );
    for w in want {
        assert!(msg.contains(w), "{msg:?} does not contain {w:?}");
    }
    assert_eq!(store.list().unwrap(), vec![]);
    assert_no_leftovers(store);
    assert_eq!(
        listing(outside),
        before,
        "nothing written outside the store"
    );
}

fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            out.push(format!("{} {}", e.path().display(), m.len()));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn hostile_and_broken_archives() {
    let tmp = Scratch::new("hostile");
    let store = ImageStore::open(tmp.join("a/b/store")).unwrap();
    let outside = tmp.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"host secret").unwrap();
    let bin = |l: Layer| l.dir("bin/", 0o755).bytes();

    // `..` climbing out of the root.
    let a = oci_archive(
        &tmp,
        "dotdot.tar",
        Some("x"),
        &[bin(Layer::new().file("../../../../outside/pwned", b"!"))],
    );
    refused(
        &store,
        &a,
        None,
        &outside,
        &[
            "layer blobs/sha256/",
            "entry \"../../../../outside/pwned\" escapes the root",
        ],
    );
    let a = oci_archive(
        &tmp,
        "dotdot2.tar",
        Some("x"),
        &[bin(Layer::new().file("bin/../../pwned", b"!"))],
    );
    refused(
        &store,
        &a,
        None,
        &outside,
        &["entry \"bin/../../pwned\" escapes the root"],
    );
    // An absolute name.
    let abs = format!("{}/pwned", outside.display());
    let a = oci_archive(
        &tmp,
        "abs.tar",
        Some("x"),
        &[bin(Layer::new().file(&abs, b"!"))],
    );
    refused(
        &store,
        &a,
        None,
        &outside,
        &[&format!("entry {abs:?} is an absolute path")],
    );
    // A hardlink to a file outside.
    let a = oci_archive(
        &tmp,
        "hardlink.tar",
        Some("x"),
        &[bin(Layer::new().hardlink("h", "../../../outside/secret"))],
    );
    refused(
        &store,
        &a,
        None,
        &outside,
        &["entry \"h\": hardlink target \"../../../outside/secret\" escapes the root"],
    );
    // A hardlink through a symlink that points outside: resolved in the root, where there
    // is no such file (the host's file is not linked in).
    let evil = Layer::new()
        .symlink("evil", &outside.display().to_string())
        .hardlink("h", "evil/secret");
    let a = oci_archive(&tmp, "hardlink-symlink.tar", Some("x"), &[bin(evil)]);
    refused(
        &store,
        &a,
        None,
        &outside,
        &["entry \"h\": hardlink target \"evil/secret\" does not exist"],
    );
    // Malformed index.json, a missing blob, a tampered blob, not a tar, no name.
    let layers = vec![bin(Layer::new().file("bin/x", b"x"))];
    let config = images::config_json(&spec(), &layers);
    let good = oci_layout_files(Some("x"), &config, &layers);
    let with = |file: &str, f: &dyn Fn(&mut Files)| {
        let mut files = good.clone();
        f(&mut files);
        let p = tmp.join(file);
        write_tar(&p, &files);
        p
    };
    let set = |files: &mut Vec<(String, Vec<u8>)>, path: &str, data: &[u8]| {
        files.iter_mut().find(|(p, _)| p == path).unwrap().1 = data.to_vec();
    };
    let a = with("no-manifests.tar", &|f| {
        set(f, "index.json", br#"{"schemaVersion":2}"#)
    });
    refused(
        &store,
        &a,
        None,
        &outside,
        &["index.json: missing field `manifests`"],
    );
    let a = with("bad-json.tar", &|f| {
        set(f, "index.json", b"{\"manifests\": [")
    });
    refused(
        &store,
        &a,
        None,
        &outside,
        &["index.json: EOF while parsing"],
    );
    let layer_path = format!("blobs/sha256/{}", sha256_hex(&layers[0]));
    let a = with("missing-blob.tar", &|f| f.retain(|(p, _)| *p != layer_path));
    refused(
        &store,
        &a,
        None,
        &outside,
        &[&format!("layer {layer_path}: missing from the archive")],
    );
    let tampered = bin(Layer::new().file("bin/x", b"y"));
    let a = with("tampered.tar", &|f| set(f, &layer_path, &tampered));
    refused(
        &store,
        &a,
        None,
        &outside,
        &[&format!("layer {layer_path}: digest mismatch")],
    );
    let a = tmp.join("random.tar");
    std::fs::write(
        &a,
        (0..4096u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    refused(&store, &a, None, &outside, &["not a tar archive"]);
    let a = tmp.join("empty.tar");
    std::fs::write(&a, b"").unwrap();
    refused(&store, &a, None, &outside, &["neither an OCI image layout"]);
    let a = oci_archive(&tmp, "unnamed.tar", None, &layers);
    refused(
        &store,
        &a,
        None,
        &outside,
        &["index.json: manifests[0]", "give --name"],
    );
    refused(
        &store,
        &tmp.join("absent.tar"),
        None,
        &outside,
        &["opening"],
    );
    // The unnamed archive imports once named.
    assert_eq!(
        store.import(&a, Some("named")).unwrap()[0].reference,
        "named:latest"
    );
    assert!(store.remove("named").unwrap());

    // A write through a symlink to a directory the image lacks is refused (the host's
    // directory of that name is not used).
    let dangling = Layer::new()
        .symlink("evil", &outside.display().to_string())
        .file("evil/pwned", b"!");
    let a = oci_archive(&tmp, "dangling.tar", Some("x"), &[bin(dangling)]);
    refused(
        &store,
        &a,
        None,
        &outside,
        &["entry \"evil/pwned\"", "No such file or directory"],
    );
    // A symlink pointing outside is followed inside the root: the file lands in the
    // image, not on the host.
    let mut evil = Layer::new();
    let mut prefix = String::new();
    for c in outside.strip_prefix("/").unwrap().iter() {
        prefix.push_str(c.to_str().unwrap());
        prefix.push('/');
        evil = evil.dir(&prefix, 0o755);
    }
    let evil = evil
        .symlink("evil", &outside.display().to_string())
        .symlink("evil2", "../../../../../../../../../..")
        .file("evil/pwned", b"contained")
        .file("evil2/pwned2", b"contained too");
    let a = oci_archive(&tmp, "symlink.tar", Some("symlink"), &[bin(evil)]);
    let before = listing(&outside);
    let img = store.import(&a, None).unwrap().remove(0);
    assert_eq!(listing(&outside), before);
    let inside = img
        .rootfs
        .join(outside.strip_prefix("/").unwrap())
        .join("pwned");
    assert_eq!(std::fs::read(inside).unwrap(), b"contained");
    assert_eq!(
        std::fs::read(img.rootfs.join("pwned2")).unwrap(),
        b"contained too"
    );
    assert!(!tmp.join("pwned2").exists() && !Path::new("/pwned2").exists());
    assert_no_leftovers(&store);
}

fn plimsoll(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_plimsoll"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_import_ls_rm() {
    let tmp = Scratch::new("cli");
    let dir = tmp.join("store");
    let dir_s = dir.to_str().unwrap();
    let archive = tmp.join("busybox.tar");
    images::busybox_oci_archive(&archive, "busybox:cli", &ImageSpec::cmd(&["sh"]));
    let out = plimsoll(&[
        "image",
        "import",
        archive.to_str().unwrap(),
        "--name",
        "cli/bb:1",
        "--image-dir",
        dir_s,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("imported cli/bb:1 ("), "{stdout}");

    let out = plimsoll(&["image", "ls", "--image-dir", dir_s]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(head, vec!["REFERENCE", "ID", "SIZE"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    let img = ImageStore::open(&dir)
        .unwrap()
        .resolve("cli/bb:1")
        .unwrap()
        .unwrap();
    assert_eq!(row[0], "cli/bb:1");
    assert_eq!(row[1], &img.id["sha256:".len().."sha256:".len() + 12]);
    assert!(row[2].ends_with("MB"), "{stdout}");

    let out = plimsoll(&["image", "rm", "cli/bb:1", "--image-dir", dir_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = plimsoll(&["image", "ls", "--image-dir", dir_s]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    let out = plimsoll(&["image", "rm", "cli/bb:1", "--image-dir", dir_s]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no image \"cli/bb:1\""));

    let bad = tmp.join("bad.tar");
    std::fs::write(&bad, b"not an archive at all, longer than a few bytes").unwrap();
    let out = plimsoll(&[
        "image",
        "import",
        bad.to_str().unwrap(),
        "--image-dir",
        dir_s,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("archive {}", bad.display())),
        "{stderr}"
    );
    let out = plimsoll(&[
        "image",
        "import",
        archive.to_str().unwrap(),
        "--name",
        "Bad Name",
        "--image-dir",
        dir_s,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid image reference"));
}

#[test]
fn nested_index_picks_this_platform() {
    // index.json → a nested image index listing an arm/v7 manifest, this machine's
    // manifest and an attestation manifest (as buildx writes them).
    let tmp = Scratch::new("nested");
    let store = ImageStore::open(tmp.join("store")).unwrap();
    let native = vec![Layer::new().file("arch", b"native").bytes()];
    let foreign = vec![Layer::new().file("arch", b"foreign").bytes()];
    let mut files = oci_layout_files(None, &images::config_json(&spec(), &native), &native);
    let other = oci_layout_files(None, &images::config_json(&spec(), &foreign), &foreign);
    let descriptor = |files: &[(String, Vec<u8>)]| -> serde_json::Value {
        let index: serde_json::Value =
            serde_json::from_slice(&files.iter().find(|(p, _)| p == "index.json").unwrap().1)
                .unwrap();
        index["manifests"][0].clone()
    };
    let mut native_desc = descriptor(&files);
    let mut foreign_desc = descriptor(&other);
    foreign_desc["platform"] =
        serde_json::json!({"architecture": "arm", "os": "linux", "variant": "v7"});
    let mut attestation = native_desc.clone();
    attestation["platform"] = serde_json::json!({"architecture": "unknown", "os": "unknown"});
    attestation["annotations"] =
        serde_json::json!({"vnd.docker.reference.type": "attestation-manifest"});
    native_desc["platform"]["os"] = "linux".into();
    for f in other {
        if f.0.starts_with("blobs/") && !files.iter().any(|(p, _)| *p == f.0) {
            files.push(f);
        }
    }
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [foreign_desc, native_desc, attestation],
    }))
    .unwrap();
    let nested_hex = sha256_hex(&nested);
    files.push((format!("blobs/sha256/{nested_hex}"), nested.clone()));
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{nested_hex}"),
            "size": nested.len(),
            "annotations": {"io.containerd.image.name": "docker.io/library/multi:2", "org.opencontainers.image.ref.name": "2"},
        }],
    });
    files.iter_mut().find(|(p, _)| p == "index.json").unwrap().1 =
        serde_json::to_vec(&top).unwrap();
    let archive = tmp.join("multi.tar");
    write_tar(&archive, &files);
    let img = store.import(&archive, None).unwrap().remove(0);
    assert_eq!(img.reference, "multi:2");
    assert_eq!(std::fs::read(img.rootfs.join("arch")).unwrap(), b"native");
}

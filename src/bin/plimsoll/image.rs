//! `plimsoll image`: the node agent's image store (import OCI image layouts and
//! `docker save` archives, list, remove).

use crate::Status;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use plimsoll::agent::image::ImageStore;
use std::path::PathBuf;

/// The image store of `plimsoll agent --runtime process` unless told otherwise.
pub const DEFAULT_IMAGE_DIR: &str = "/var/lib/plimsoll/images";

/// Options of `plimsoll image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// What to do with the store.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import an OCI image layout archive or a `docker save` archive (plain or gzip).
    Import(ImportArgs),
    /// List the images: reference, id, size.
    Ls(StoreArgs),
    /// Remove an image.
    Rm(RmArgs),
}

/// Where the store is.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The image store directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_IMAGE_DIR)]
    pub image_dir: PathBuf,
}

/// Options of `plimsoll image import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The archive (`docker save -o FILE.tar`, an OCI image layout tar).
    #[arg(value_name = "FILE.tar")]
    pub archive: PathBuf,
    /// The reference to import it as (default: the archive's RepoTags or ref.name
    /// annotation).
    #[arg(long, value_name = "NAME:TAG")]
    pub name: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Options of `plimsoll image rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The image reference (`busybox`, `busybox:1.36`).
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs `plimsoll image`.
pub fn run(args: &ImageArgs) -> anyhow::Result<Status> {
    match &args.command {
        ImageCommand::Import(a) => {
            let store = open(&a.store)?;
            let images = store.import(&a.archive, a.name.as_deref())?;
            for img in images {
                println!(
                    "imported {} ({}, {})",
                    img.reference,
                    short_id(&img.id),
                    human_size(img.size)
                );
            }
        }
        ImageCommand::Ls(a) => {
            let store = open(a)?;
            let images = store.list()?;
            let width = images
                .iter()
                .map(|i| i.reference.len())
                .max()
                .unwrap_or(0)
                .max("REFERENCE".len());
            println!("{:<width$}  {:<12}  SIZE", "REFERENCE", "ID");
            for img in images {
                println!(
                    "{:<width$}  {:<12}  {}",
                    img.reference,
                    short_id(&img.id),
                    human_size(img.size)
                );
            }
        }
        ImageCommand::Rm(a) => {
            let store = open(&a.store)?;
            if !store.remove(&a.reference)? {
                bail!("no image {:?} in {}", a.reference, store.dir().display());
            }
            println!(
                "removed {}",
                plimsoll::agent::image::normalize(&a.reference)?
            );
        }
    }
    Ok(Status::Ok)
}

fn open(args: &StoreArgs) -> anyhow::Result<ImageStore> {
    ImageStore::open(&args.image_dir)
        .with_context(|| format!("image store {}", args.image_dir.display()))
}

/// The first 12 hex digits of an id (`sha256:abcd…` → `abcd…`), as Docker shows them.
fn short_id(id: &str) -> &str {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    &hex[..hex.len().min(12)]
}

/// Bytes in decimal units, as Docker shows image sizes (`4.26MB`).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[u]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ids() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}

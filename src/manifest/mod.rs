//! Kubernetes manifests (interface stub; filled by the manifest work package).
#![allow(missing_docs, unused_variables)]
use crate::model::{Node, Pod};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{0}")]
    Invalid(String),
}

/// Nodes and pods read from files (pods with `node_name` are bound, the rest pending).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
}

/// Reads Kubernetes YAML/JSON manifests and openb CSV files.
pub fn load_files<P: AsRef<Path>>(paths: &[P]) -> Result<Loaded, ManifestError> {
    unimplemented!("stub")
}

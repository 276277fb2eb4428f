//! Stub, filled by its work package.

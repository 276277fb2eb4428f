//! Synthetic generator (stub).

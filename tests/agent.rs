//! End-to-end tests of the node agent (being written).

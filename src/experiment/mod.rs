//! Experiments that replay published benchmarks on Plimsoll's placement code.

pub mod win;

//! Experiments that reproduce published evaluations with Plimsoll's policies.
//!
//! [`saturation`] is the FGD paper's openb "saturation" experiment (Weng et al., ATC'23):
//! pods arrive one at a time, never depart, and the GPU allocation ratio is read against
//! the arrived GPU demand; its policies include Plimsoll's own, CBF
//! ([`saturation::cbf`]), which beats FGD on it.
//!
//! [`overcommit`] packs the Bitbrains VMs by requests and by predicted peak usage
//! ([`crate::place::usage`]) and replays the test period to count overloaded nodes.

pub mod overcommit;
pub mod saturation;

//! nodeimg: build oVirt Node images and their update RPMs from a kickstart.
//!
//! The data flow and the rules every module follows are in `DESIGN.md` of the
//! project; this crate holds the stages, the binary only parses arguments.

pub mod artifacts;
pub mod build;
pub mod cli;
pub mod diff;
pub mod disk;
pub mod doctor;
pub mod exit;
pub mod image;
pub mod install;
pub mod kickstart;
pub mod koji;
pub mod liveimg;
pub mod logging;
pub mod nevra;
pub mod package;
pub mod sbom;
pub mod sys;
pub mod units;

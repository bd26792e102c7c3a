//! Installer backends: they turn a flattened kickstart into a root filesystem that
//! `liveimg` packs. livemedia-creator on the host (`lmc`) or in a mock chroot (`mock`);
//! or the native installer (`dnf`): dnf into a directory, then the kickstart's
//! commands and scripts applied to the tree.

pub mod dnf;
pub mod lmc;
pub mod mock;
pub mod sandbox;

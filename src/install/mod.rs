//! Installer backends: they turn a flattened kickstart into a root filesystem that
//! `liveimg` packs. livemedia-creator on the host (`lmc`) or in a mock chroot (`mock`);
//! the native dnf installer is issue 7.

pub mod lmc;
pub mod mock;

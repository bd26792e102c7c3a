//! Installer backends: they turn a flattened kickstart into a root filesystem that
//! `liveimg` packs. Only livemedia-creator (`lmc`) exists so far; the native dnf
//! installer is issue 7.

pub mod lmc;

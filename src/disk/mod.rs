//! Disks and filesystems read from files, shared by `liveimg` (which makes images)
//! and `image` (which inspects them): partition tables (`partition`), the ext4
//! superblock and random access at an offset (`ext4`), and path resolution inside an
//! ext4 filesystem that never trusts the image's symlinks (`resolve`).

pub mod ext4;
pub mod partition;
pub mod resolve;

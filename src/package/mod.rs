//! The update RPM and its placeholder: written natively by a streaming RPM writer, or
//! rendered as a spec for rpmbuild.

pub mod cpio;
pub mod fanout;
pub mod update;
pub mod writer;

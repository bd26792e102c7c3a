//! How commands print their results.

use clap::ValueEnum;

/// Output format of a command's report on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

//! Logging: human text (or JSON lines) on stderr, and a build log file that records
//! everything at `debug`, including every line external programs print.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

/// `NODEIMG_LOG=nodeimg=trace` style filters override `-v`/`-q` on stderr.
pub const LOG_ENV: &str = "NODEIMG_LOG";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain lines for people.
    Text,
    /// One JSON object per line, for machines.
    Json,
}

/// The build log currently open, if any; events go nowhere else until one is opened.
static BUILD_LOG: Mutex<Option<File>> = Mutex::new(None);

/// Set up the global subscriber. `verbosity` is `-v` count minus `-q` count.
pub fn init(verbosity: i8, format: LogFormat) {
    let level = match verbosity {
        i8::MIN..=-2 => LevelFilter::ERROR,
        -1 => LevelFilter::WARN,
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let mut stderr_filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .with_env_var(LOG_ENV)
        .from_env_lossy();
    if std::env::var_os(LOG_ENV).is_none() && verbosity < 1 {
        // backhand reports each table it reads at info level: noise at nodeimg's
        // default level, shown with -v.
        stderr_filter =
            stderr_filter.add_directive("backhand=warn".parse().expect("a valid directive"));
    }
    let stderr_layer = match format {
        LogFormat::Text => fmt::layer()
            .with_writer(io::stderr)
            .with_target(false)
            .without_time()
            .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(io::stderr)
            .with_current_span(false)
            .boxed(),
    };
    let file_layer = fmt::layer()
        .with_writer(BuildLogWriter)
        .with_ansi(false)
        .with_target(false)
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_default(LevelFilter::DEBUG)
                .with_target("backhand", LevelFilter::WARN),
        );
    // A second init (tests that call it twice) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(stderr_layer.with_filter(stderr_filter))
        .with(file_layer)
        .try_init();
}

/// Start (or switch) the build log: from now on every event at `debug` and above,
/// and every line of every command's output, is appended to `path`.
pub fn open_build_log(path: &Path) -> Result<()> {
    let file = File::options()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the build log {}", path.display()))?;
    *BUILD_LOG.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
    Ok(())
}

/// Stop writing the build log (it is flushed and closed).
pub fn close_build_log() {
    BUILD_LOG.lock().unwrap_or_else(|p| p.into_inner()).take();
}

struct BuildLogWriter;

impl Write for BuildLogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match BUILD_LOG.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(file) => file.write_all(buf).map(|()| buf.len()),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BuildLogWriter {
    type Writer = BuildLogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        BuildLogWriter
    }
}

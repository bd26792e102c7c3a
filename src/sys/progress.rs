//! Progress of a long step for a person: a bar on a terminal, else a log line every
//! tenth of the way (the build log and `--log-format json` get those).

use std::io::IsTerminal;

/// What is counted: the bar and the log lines say it differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// Items (mksquashfs's blocks): a percentage.
    Count,
    /// Bytes: how many of how many, and the rate on a terminal.
    Bytes,
}

/// Progress towards `total` units of `what`.
pub struct Progress {
    what: String,
    unit: Unit,
    total: u64,
    done: u64,
    next_report: u64,
    /// Below this total nothing is shown: a short step needs no progress.
    worth_showing: u64,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Items: a bar with a percentage, or a log line every tenth of the way.
    pub fn new(what: impl Into<String>, total: u64) -> Progress {
        Self::with(what.into(), Unit::Count, total, 0)
    }

    /// Bytes, shown only when there are at least `worth_showing` of them.
    pub fn bytes(what: impl Into<String>, total: u64, worth_showing: u64) -> Progress {
        Self::with(what.into(), Unit::Bytes, total, worth_showing)
    }

    fn with(what: String, unit: Unit, total: u64, worth_showing: u64) -> Progress {
        let shown = total >= worth_showing;
        let bar = (shown && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let template = match unit {
                Unit::Count => "{prefix} {bar:40} {percent:>3}% eta {eta}",
                Unit::Bytes => {
                    "{prefix} {bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}"
                }
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_prefix(what.clone());
            bar
        });
        Progress {
            what,
            unit,
            total,
            done: 0,
            next_report: total / 10,
            worth_showing,
            bar,
        }
    }

    /// How much is done.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// `n` more units done.
    pub fn advance(&mut self, n: u64) {
        let done = self.done.saturating_add(n);
        self.set(done, self.total);
    }

    /// `done` of `total` units done (a new total replaces the old one).
    pub fn set(&mut self, done: u64, total: u64) {
        self.done = done;
        if total != self.total {
            self.total = total;
            self.next_report = self.next_report.min(total / 10);
            if let Some(bar) = &self.bar {
                bar.set_length(total);
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        } else if total > 0
            && total >= self.worth_showing
            && done >= self.next_report
            && done < total
        {
            let percent = done * 100 / total;
            match self.unit {
                Unit::Count => tracing::info!("{}: {percent}%", self.what),
                Unit::Bytes => tracing::info!(
                    "{}: {} of {} ({percent}%)",
                    self.what,
                    crate::units::human(done),
                    crate::units::human(total)
                ),
            }
            self.next_report = done + total / 10;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// mksquashfs's bar, `[====\    ] 200/382  52%`: (done, total).
pub fn parse_mksquashfs(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix('[')?;
    let (_, counts) = rest.split_once(']')?;
    let (done, total) = counts.split_whitespace().next()?.split_once('/')?;
    Some((done.parse().ok()?, total.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mksquashfs_bars_are_read() {
        assert_eq!(
            parse_mksquashfs("[=======|        ] 200/382  52%"),
            Some((200, 382))
        );
        assert_eq!(
            parse_mksquashfs("Parallel mksquashfs: Using 2 processors"),
            None
        );
    }

    #[test]
    fn advancing_counts_and_saturates() {
        let mut p = Progress::bytes("packaging", 100, 1 << 30);
        p.advance(40);
        p.advance(u64::MAX);
        assert_eq!(p.done(), u64::MAX);
    }
}

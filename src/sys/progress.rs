//! Progress of a long step for a person: a bar on a terminal, else a log line every
//! tenth of the way (the build log and `--log-format json` get those).

use std::io::IsTerminal;

/// Progress towards `total` units of `what`.
pub struct Progress {
    what: String,
    total: u64,
    next_report: u64,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(what: impl Into<String>, total: u64) -> Progress {
        let what = what.into();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{prefix} {bar:40} {percent:>3}% eta {eta}")
            {
                bar.set_style(style);
            }
            bar.set_prefix(what.clone());
            bar
        });
        Progress {
            what,
            total,
            next_report: total / 10,
            bar,
        }
    }

    /// `done` of `total` units done (a new total replaces the old one).
    pub fn set(&mut self, done: u64, total: u64) {
        if total != self.total {
            self.total = total;
            self.next_report = self.next_report.min(total / 10);
            if let Some(bar) = &self.bar {
                bar.set_length(total);
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        } else if total > 0 && done >= self.next_report && done < total {
            tracing::info!("{}: {}%", self.what, done * 100 / total);
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
}

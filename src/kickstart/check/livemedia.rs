//! livemedia-creator's own rules, by the mode it runs in. They read only the typed
//! model: which commands are there, the partitions, the packages.

use super::{Checker, LmcMode};
use crate::kickstart::model::Model;
use crate::kickstart::{Origin, Rule};

impl Model {
    /// Whether any line is the command `name`.
    pub(super) fn has_command(&self, name: &str) -> bool {
        self.commands.iter().any(|(n, _)| n == name)
    }

    /// Where the last `name` command is (single-instance commands are last-wins).
    pub(super) fn last_command(&self, name: &str) -> Option<&Origin> {
        self.commands
            .iter()
            .rfind(|(n, _)| n == name)
            .map(|(_, origin)| origin)
    }

    /// Every `name` command, in order.
    pub(super) fn all_commands<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Origin> {
        self.commands
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, origin)| origin)
    }

    /// The file of the first command: where findings about the whole kickstart go.
    pub(super) fn file_origin(&self) -> Option<Origin> {
        self.commands
            .first()
            .map(|(_, origin)| Origin::new(origin.file.clone(), 0))
    }
}

impl Checker {
    pub(super) fn livemedia(&mut self, model: &Model, mode: LmcMode) {
        let file = model.file_origin();
        let has = |name: &str| model.has_command(name);
        let mut refuse = |origin: &Origin, message: String| {
            self.error(origin, Rule::Livemedia, message);
        };
        if let Some(origin) = &file {
            if mode != LmcMode::NoVirt && !has("shutdown") && !has("poweroff") {
                refuse(
                    origin,
                    "The kickstart must include shutdown (or poweroff) when using virt installation"
                        .to_owned(),
                );
            }
            let dracut_live = model
                .packages
                .as_ref()
                .is_some_and(|p| p.lines.iter().any(|(word, _)| word == "dracut-live"));
            if mode == LmcMode::Iso && !dracut_live {
                refuse(
                    origin,
                    "dracut-live package is missing from the kickstart (a live ISO boots with it)"
                        .to_owned(),
                );
            }
        }
        for name in ["text", "cmdline", "graphical"] {
            for origin in model.all_commands(name) {
                refuse(
                    origin,
                    format!(
                        "livemedia-creator refuses a display mode ({name}): it chooses the mode itself; remove the line"
                    ),
                );
            }
        }
        if (has("url") || has("nfs"))
            && !has("network")
            && let Some(origin) = model.last_command("url").or(model.last_command("nfs"))
        {
            refuse(
                origin,
                "livemedia-creator needs a network line when the source is url or nfs (even file: URLs)"
                    .to_owned(),
            );
        }
        if !has("url") {
            for origin in model.all_commands("repo") {
                refuse(
                    origin,
                    "repo can only be used with the url install method (livemedia-creator)"
                        .to_owned(),
                );
            }
        }
        if mode == LmcMode::NoVirt
            && !has("url")
            && !has("nfs")
            && !has("ostreesetup")
            && let Some(origin) = &file
        {
            refuse(
                origin,
                "livemedia-creator --no-virt installs only from url, nfs or ostreesetup".to_owned(),
            );
        }
        if mode == LmcMode::Iso {
            return;
        }
        // A filesystem image holds one filesystem: / (swap is allowed and ignored).
        if let Some(origin) = model.last_command("autopart") {
            refuse(
                origin,
                "Filesystem images must use a single / part, not autopart".to_owned(),
            );
        }
        for p in model.partitions.iter().chain(&model.logvols) {
            let mount = p.mountpoint.as_str();
            if !mount.is_empty() && mount != "/" && mount != "swap" {
                refuse(
                    &p.origin,
                    format!("Filesystem images must use a single / part, not {mount}"),
                );
            }
        }
    }
}

//! What would leave an anaconda spoke incomplete: that stops a livemedia-creator
//! build, which runs anaconda in cmdline mode.

use super::Checker;
use crate::kickstart::parser::{self, Kickstart};
use crate::kickstart::{Finding, Origin, Rule, Severity};

impl Checker {
    pub(super) fn unattended(&mut self, ks: &Kickstart) {
        let top = ks.items.first().map(|i| match i {
            parser::Item::Command(c) => c.origin.clone(),
            parser::Item::Section(s) => s.origin.clone(),
        });
        let missing = |rule_message: String, severity: Severity, findings: &mut Vec<Finding>| {
            findings.push(Finding::new(
                severity,
                top.as_ref().map(|o| Origin::new(o.file.clone(), 0)),
                Rule::Unattended,
                rule_message,
            ));
        };
        let mut findings = Vec::new();
        let has = |name: &str| ks.commands().any(|c| c.name == name);
        let timezone_set = self
            .last("timezone")
            .is_some_and(|(_, p)| !p.positionals.is_empty());
        if !timezone_set {
            missing(
                "no time zone (timezone Area/City): the Time & date spoke stays incomplete and anaconda stops"
                    .to_owned(),
                Severity::Error,
                &mut findings,
            );
        }
        let image_payload = ["liveimg", "ostreesetup", "ostreecontainer", "bootc"]
            .iter()
            .any(|c| has(c));
        if !image_payload && !ks.sections().any(|s| s.name == "%packages") {
            missing(
                "no %packages section: the Software selection spoke stays incomplete".to_owned(),
                Severity::Error,
                &mut findings,
            );
        }
        let sources = [
            "url",
            "nfs",
            "cdrom",
            "harddrive",
            "liveimg",
            "ostreesetup",
            "ostreecontainer",
            "bootc",
        ];
        if !sources.iter().any(|c| has(c)) {
            missing(
                "no installation source (url, nfs, cdrom, harddrive, liveimg, ostreesetup): the Installation source spoke stays incomplete, unless the build tool adds one"
                    .to_owned(),
                Severity::Error,
                &mut findings,
            );
        }
        let root = self
            .parsed("part")
            .any(|(_, p)| p.positionals.first().is_some_and(|m| m == "/"))
            || self
                .parsed("logvol")
                .any(|(_, p)| p.positionals.first().is_some_and(|m| m == "/"))
            || has("autopart")
            || ks
                .command_all("mount")
                .any(|c| c.args.get(1).is_some_and(|m| m == "/"))
            || ks
                .command_all("raid")
                .any(|c| c.args.first().is_some_and(|m| m == "/"));
        if !root {
            missing(
                "no root filesystem (part /, logvol /, autopart): the Installation destination spoke stays incomplete"
                    .to_owned(),
                Severity::Error,
                &mut findings,
            );
        }
        let admin = has("rootpw")
            || self.parsed("user").any(|(_, p)| {
                !p.has("--lock")
                    && p.get("--groups")
                        .is_some_and(|g| g.split(',').any(|g| g.trim() == "wheel"))
            });
        if !admin {
            missing(
                "no rootpw and no unlocked user in wheel: the Root password and User spokes stay incomplete"
                    .to_owned(),
                Severity::Error,
                &mut findings,
            );
        }
        if !has("lang") {
            missing(
                "no lang: harmless in cmdline installs, incomplete in graphical ones".to_owned(),
                Severity::Warning,
                &mut findings,
            );
        }
        if !has("keyboard") {
            missing(
                "no keyboard: harmless in cmdline installs, incomplete in graphical ones"
                    .to_owned(),
                Severity::Warning,
                &mut findings,
            );
        }
        self.findings.extend(findings);
    }
}

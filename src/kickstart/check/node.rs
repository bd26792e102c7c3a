//! The oVirt Node image's policy (`--policy node`), read from the typed model.

use super::Checker;
use crate::kickstart::model::{Model, ScriptSection};
use crate::kickstart::{Finding, Origin, Rule, Severity};

/// What the Node's %packages holds; the rest is installed by %post.
const BASE_PACKAGES: &[&str] = &[
    "@core",
    "dracut-live",
    "dracut-config-generic",
    "-dracut-config-rescue",
    "centos-stream-repos",
    "scap-security-guide",
    "centos-release-ovirt45",
    "cockpit",
    "ovirt-release-host-node",
    "ovirt-node-ng-image-update-placeholder",
    "-ovirt-node-ng-image-update",
];

const PLACEHOLDER: &str = "ovirt-node-ng-image-update-placeholder";
const UPDATE: &str = "ovirt-node-ng-image-update";

impl Checker {
    pub(super) fn node(&mut self, model: &Model) {
        let file_origin = model.file_origin();
        let origin_of = |name: &str| model.last_command(name).cloned().or(file_origin.clone());
        let mut need = |ok: bool, origin: Option<Origin>, message: &str| {
            if !ok {
                self.findings.push(Finding::new(
                    Severity::Error,
                    origin,
                    Rule::NodePolicy,
                    message.to_owned(),
                ));
            }
        };
        need(
            model.has_command("selinux"),
            file_origin.clone(),
            "the Node sets SELinux explicitly: add selinux --enforcing",
        );
        need(
            model.rootpw.as_ref().is_some_and(|p| p.lock),
            origin_of("rootpw"),
            "the Node's root account is locked: rootpw --lock",
        );
        need(
            model
                .users
                .iter()
                .any(|u| u.name == "node" && u.password.lock),
            origin_of("user"),
            "the Node has a locked user node: user --name=node --lock",
        );
        need(
            model
                .clearpart
                .as_ref()
                .is_some_and(|c| c.which.as_deref() == Some("all") && c.initlabel),
            origin_of("clearpart"),
            "the Node clears the disk: clearpart --all --initlabel",
        );
        match model.partitions.as_slice() {
            [p] => {
                let origin = Some(p.origin.clone());
                need(
                    p.mountpoint == "/",
                    origin.clone(),
                    "the Node's one partition is /",
                );
                need(
                    p.fstype.as_deref() == Some("ext4"),
                    origin.clone(),
                    "the Node's / is ext4 (rootfs.img): --fstype=ext4",
                );
                need(
                    p.fsoptions
                        .as_deref()
                        .is_some_and(|o| o.split(',').any(|o| o.trim() == "discard")),
                    origin.clone(),
                    "the Node's / is mounted with discard: --fsoptions=discard",
                );
                need(
                    p.size_given && !p.grow,
                    origin,
                    "the Node's / has an explicit --size (it sizes rootfs.img), without --grow",
                );
            }
            parts => need(
                false,
                parts
                    .get(1)
                    .map(|p| p.origin.clone())
                    .or(file_origin.clone()),
                "the Node has exactly one partition, / (ext4, discard, explicit size)",
            ),
        }
        need(
            model.has_command("poweroff") || model.has_command("shutdown"),
            file_origin.clone(),
            "the Node's build ends the install with poweroff (or shutdown)",
        );
        self.node_packages(model, file_origin);
        // %packages stays small: anything beyond the base is installed by %post.
        for (word, origin) in model.packages.iter().flat_map(|p| &p.lines) {
            if !BASE_PACKAGES.contains(&word.as_str()) {
                self.findings.push(Finding::warning(
                    Some(origin.clone()),
                    Rule::NodePolicy,
                    format!(
                        "{word} in %packages: the Node keeps %packages to its base set and installs the rest from %post"
                    ),
                ));
            }
        }
    }

    /// The placeholder is in the image, the update package kept out of it.
    fn node_packages(&mut self, model: &Model, file_origin: Option<Origin>) {
        let mut need = |ok: bool, message: &str| {
            if !ok {
                self.findings.push(Finding::new(
                    Severity::Error,
                    file_origin.clone(),
                    Rule::NodePolicy,
                    message.to_owned(),
                ));
            }
        };
        let lines: Vec<&str> = model
            .packages
            .iter()
            .flat_map(|p| p.lines.iter().map(|(word, _)| word.as_str()))
            .collect();
        let post: Vec<&str> = model
            .scripts
            .iter()
            .filter(|s| s.section == ScriptSection::Post)
            .map(|s| s.body.as_str())
            .collect();
        need(
            lines.iter().chain(&post).any(|t| t.contains(PLACEHOLDER)),
            "the image installs ovirt-node-ng-image-update-placeholder (in %packages or %post): without it a Node has no upgrade path",
        );
        let excluded_in_post = |body: &&str| {
            body.lines()
                .any(|l| l.trim_end().ends_with(&format!("-{UPDATE}")))
                || body.contains(&format!("--exclude {UPDATE}"))
                || body.contains(&format!("--exclude={UPDATE}"))
        };
        need(
            lines.contains(&format!("-{UPDATE}").as_str()) || post.iter().any(excluded_in_post),
            "ovirt-node-ng-image-update itself is kept out of the image (-ovirt-node-ng-image-update, or dnf --exclude): its Obsoletes would replace the placeholder",
        );
    }
}

//! A diff for people (text) and for release notes (Markdown); JSON is the `Diff` itself.

use std::fmt::Write as _;

use super::files::{FileChange, Files, what_changed};
use super::{Diff, Moved, Side};
use crate::units::human;

fn or_none(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("none")
}

fn key_change(m: &Moved) -> String {
    if m.old_sigkey == m.new_sigkey {
        String::new()
    } else {
        format!(
            " (signed by {} → {})",
            or_none(&m.old_sigkey),
            or_none(&m.new_sigkey)
        )
    }
}

fn side_line(label: &str, s: &Side) -> String {
    format!(
        "{label} {}: NVR {}, {}, {} packages, image {}, root filesystem {} used of {}\n",
        s.source,
        or_none(&s.nvr),
        or_none(&s.os_release),
        s.packages,
        human(s.image_bytes),
        human(s.filesystem_used_bytes),
        human(s.filesystem_bytes)
    )
}

/// Lines for a terminal.
pub fn render_text(d: &Diff) -> String {
    let mut out = side_line("old", &d.old) + &side_line("new", &d.new);
    if d.is_empty() {
        out.push_str("no differences in packages, kernels or image facts\n");
        return out;
    }
    for c in &d.changed {
        let _ = writeln!(out, "{}: {} → {}", c.what, or_none(&c.old), or_none(&c.new));
    }
    for k in &d.kernels_added {
        let _ = writeln!(out, "kernel added: {k}");
    }
    for k in &d.kernels_removed {
        let _ = writeln!(out, "kernel removed: {k}");
    }
    let p = &d.packages;
    let _ = writeln!(
        out,
        "packages: {} added, {} removed, {} upgraded, {} downgraded, {} rebuilt",
        p.added.len(),
        p.removed.len(),
        p.upgraded.len(),
        p.downgraded.len(),
        p.rebuilt.len()
    );
    for a in &p.added {
        let _ = writeln!(out, "  + {}-{}.{}", a.name, a.evr, a.arch);
    }
    for r in &p.removed {
        let _ = writeln!(out, "  - {}-{}.{}", r.name, r.evr, r.arch);
    }
    for (mark, list) in [("↑", &p.upgraded), ("↓", &p.downgraded)] {
        for m in list {
            let _ = writeln!(
                out,
                "  {mark} {}.{} {} → {}{}",
                m.name,
                m.arch,
                m.old_evr,
                m.new_evr,
                key_change(m)
            );
            for e in &m.changelog {
                let _ = writeln!(out, "      * {} {}", e.date, e.author);
                for line in e.text.lines() {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
    }
    for r in &p.rebuilt {
        let _ = writeln!(
            out,
            "  = {}-{}.{} rebuilt: sigmd5 {} → {}",
            r.name,
            r.evr,
            r.arch,
            or_none(&r.old_sigmd5),
            or_none(&r.new_sigmd5)
        );
    }
    if !d.cves.is_empty() {
        let _ = writeln!(out, "CVEs: {}", d.cves.join(", "));
    }
    if let Some(files) = &d.files {
        files_text(&mut out, files);
    }
    out
}

fn owner_of(change: &FileChange) -> String {
    let package = change
        .new
        .as_ref()
        .or(change.old.as_ref())
        .and_then(|f| f.package.as_deref());
    match package {
        Some(p) => format!(" ({p})"),
        None => " (no package)".to_owned(),
    }
}

fn files_text(out: &mut String, files: &Files) {
    let _ = writeln!(
        out,
        "files: {} added, {} removed, {} changed",
        files.added.len(),
        files.removed.len(),
        files.changed.len()
    );
    for f in &files.added {
        let _ = writeln!(out, "  + {}{}", f.path, owner_of(f));
    }
    for f in &files.removed {
        let _ = writeln!(out, "  - {}{}", f.path, owner_of(f));
    }
    for f in &files.changed {
        if let (Some(old), Some(new)) = (&f.old, &f.new) {
            let _ = writeln!(
                out,
                "  ~ {}{}: {}",
                f.path,
                owner_of(f),
                what_changed(old, new)
            );
        }
    }
}

/// The most files a release-notes section lists of each kind.
const MARKDOWN_FILES: usize = 100;

fn files_markdown(out: &mut String, files: &Files) {
    let _ = writeln!(
        out,
        "\n### Files\n\n{} added, {} removed, {} changed.\n",
        files.added.len(),
        files.removed.len(),
        files.changed.len()
    );
    for (mark, list) in [
        ("+", &files.added),
        ("-", &files.removed),
        ("~", &files.changed),
    ] {
        for f in list.iter().take(MARKDOWN_FILES) {
            let detail = match (&f.old, &f.new) {
                (Some(old), Some(new)) => format!(": {}", what_changed(old, new)),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "- {mark} `{}`{}{}",
                f.path.replace('`', "'"),
                cell(&owner_of(f)),
                cell(&detail)
            );
        }
        if list.len() > MARKDOWN_FILES {
            let _ = writeln!(out, "- … and {} more", list.len() - MARKDOWN_FILES);
        }
    }
}

/// Markdown cells hold no `|` or line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A release-notes section.
pub fn render_markdown(d: &Diff) -> String {
    let mut out = String::new();
    let title = d.new.nvr.as_deref().unwrap_or(&d.new.source);
    let _ = writeln!(out, "## Changes in {}\n", cell(title));
    let _ = writeln!(
        out,
        "Compared with {}.\n",
        cell(d.old.nvr.as_deref().unwrap_or(&d.old.source))
    );
    summary_table(&mut out, d);
    if d.is_empty() {
        out.push_str("\nNo package, kernel or image changes.\n");
        return out;
    }
    package_sections(&mut out, d);
    if let Some(files) = &d.files {
        files_markdown(&mut out, files);
    }
    if !d.kernels_added.is_empty() || !d.kernels_removed.is_empty() {
        out.push_str("\n### Kernels\n\n");
        for k in &d.kernels_added {
            let _ = writeln!(out, "- added {}", cell(k));
        }
        for k in &d.kernels_removed {
            let _ = writeln!(out, "- removed {}", cell(k));
        }
    }
    out
}

/// Old and new side by side.
fn summary_table(out: &mut String, d: &Diff) {
    out.push_str("| | Old | New |\n| --- | --- | --- |\n");
    let both = |f: fn(&Side) -> String| (f(&d.old), f(&d.new));
    let rows = [
        ("imgbased NVR", both(|s| or_none(&s.nvr).to_owned())),
        ("os-release", both(|s| or_none(&s.os_release).to_owned())),
        (
            "Placeholder V-R",
            both(|s| or_none(&s.placeholder).to_owned()),
        ),
        ("Kernels", both(|s| s.kernels.join(", "))),
        ("Packages", both(|s| s.packages.to_string())),
        ("Image", both(|s| human(s.image_bytes))),
        (
            "Root filesystem used",
            both(|s| human(s.filesystem_used_bytes)),
        ),
    ];
    for (what, (old, new)) in rows {
        let _ = writeln!(out, "| {what} | {} | {} |", cell(&old), cell(&new));
    }
}

/// Security fixes, then the packages by what happened to them.
fn package_sections(out: &mut String, d: &Diff) {
    let p = &d.packages;
    if !d.cves.is_empty() {
        out.push_str("\n### Security fixes\n\n");
        for m in p.upgraded.iter().chain(&p.downgraded) {
            for cve in &m.cves {
                let _ = writeln!(out, "- {cve} ({} {})", cell(&m.name), cell(&m.new_evr));
            }
        }
    }
    for (title, list) in [("Upgraded", &p.upgraded), ("Downgraded", &p.downgraded)] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {title} ({})\n", list.len());
        out.push_str("| Package | Old | New |\n| --- | --- | --- |\n");
        for m in list {
            let _ = writeln!(
                out,
                "| {}.{} | {} | {}{} |",
                cell(&m.name),
                cell(&m.arch),
                cell(&m.old_evr),
                cell(&m.new_evr),
                cell(&key_change(m))
            );
        }
        for m in list.iter().filter(|m| !m.changelog.is_empty()) {
            let _ = writeln!(out, "\n#### {} {}\n", cell(&m.name), cell(&m.new_evr));
            for e in &m.changelog {
                let _ = writeln!(out, "- {} {}", e.date, cell(&e.author));
                for line in e.text.lines().filter(|l| !l.trim().is_empty()) {
                    let _ = writeln!(out, "  {}", line.trim());
                }
            }
        }
    }
    for (title, list) in [("Added", &p.added), ("Removed", &p.removed)] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {title} ({})\n", list.len());
        for a in list {
            let _ = writeln!(
                out,
                "- {}-{}.{}",
                cell(&a.name),
                cell(&a.evr),
                cell(&a.arch)
            );
        }
    }
    if !p.rebuilt.is_empty() {
        let _ = writeln!(
            out,
            "\n### Rebuilt at the same version ({})\n",
            p.rebuilt.len()
        );
        for r in &p.rebuilt {
            let _ = writeln!(
                out,
                "- {}-{}.{}",
                cell(&r.name),
                cell(&r.evr),
                cell(&r.arch)
            );
        }
    }
}

//! One file from a kickstart and its includes, spliced in place: every line, comment
//! and blank line kept in its order, each spliced region between marker comments that
//! name its file. Unlike pykickstart's ksflatten this does not re-serialise: nothing is
//! sorted, dropped or added, and `%ksappend` is expanded rather than lost.

use std::path::Path;

use super::source::{self, LineKind};
use super::{Finding, Severity};

/// The flattened text, or the findings that prevent it (a missing include, a cycle,
/// an unreadable file).
pub fn flatten(path: &Path) -> Result<String, Vec<Finding>> {
    let source = source::load(path);
    let blocking: Vec<Finding> = source
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .cloned()
        .collect();
    if !blocking.is_empty() {
        return Err(blocking);
    }
    let mut out = String::new();
    for line in &source.lines {
        match &line.kind {
            LineKind::Plain | LineKind::Unresolved => out.push_str(&line.text),
            LineKind::IncludeStart { resolved } => out.push_str(&format!(
                "# nodeimg flatten: {} ({}) spliced from {} --- begin",
                line.text.trim(),
                line.origin,
                resolved.display()
            )),
            LineKind::IncludeEnd { resolved } => {
                out.push_str(&format!("# nodeimg flatten: end of {}", resolved.display()))
            }
            LineKind::RuntimeInclude => {
                out.push_str(&format!(
                    "# nodeimg flatten: the next line ({}) is resolved at install time\n",
                    line.origin
                ));
                out.push_str(&line.text);
            }
        }
        out.push('\n');
    }
    Ok(out)
}

//! Kickstarts: read (with `%include` and `%ksappend`), split and parse with
//! pykickstart's semantics, flatten, and check. Every finding names the file and line it
//! comes from, also inside included files.

pub mod check;
pub mod commands;
pub mod flatten;
pub mod lexer;
pub mod model;
pub mod options;
pub mod parser;
pub mod rewrite;
pub mod source;
pub mod version;

use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;

use serde::Serialize;

/// A place in a kickstart file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Rc<PathBuf>,
    pub line: usize,
}

impl Origin {
    pub fn new(file: Rc<PathBuf>, line: usize) -> Origin {
        Origin { file, line }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}", self.file.display(), self.line)
        }
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Origin", 2)?;
        s.serialize_field("file", &self.file.display().to_string())?;
        s.serialize_field("line", &self.line)?;
        s.end()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Noted, not a problem.
    Info,
    /// Anaconda logs it and goes on (ksvalidator calls it an error); fails `--strict`.
    Warning,
    /// The install would stop, or the build would be wrong.
    Error,
}

/// What a finding is about. The group says which judge it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    // How pykickstart reads the file.
    Unreadable,
    NotUtf8,
    EmptyFile,
    Syntax,
    MissingInclude,
    IncludeCycle,
    IncludeTooDeep,
    TooLarge,
    RemoteInclude,
    RuntimeInclude,
    UnknownCommand,
    RemovedCommand,
    DeprecatedCommand,
    BadOption,
    DeprecatedOption,
    Duplicate,
    UnknownSection,
    MissingEnd,
    // Traps pykickstart is silent about.
    HashCut,
    TrailingBackslash,
    PlaintextPassword,
    EndInHeredoc,
    // Beyond syntax: what the build needs.
    Unattended,
    Livemedia,
    NodePolicy,
}

impl Rule {
    /// `syntax` for what pykickstart itself reports (ksvalidator's verdict), `trap` for
    /// what it silently accepts.
    pub fn group(self) -> &'static str {
        match self {
            Rule::HashCut
            | Rule::TrailingBackslash
            | Rule::PlaintextPassword
            | Rule::EndInHeredoc => "trap",
            Rule::RemoteInclude | Rule::RuntimeInclude => "include",
            Rule::Unattended => "unattended",
            Rule::Livemedia => "lmc",
            Rule::NodePolicy => "node",
            _ => "syntax",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub rule: Rule,
    /// Which judge the rule follows: syntax (pykickstart), trap, include, unattended,
    /// lmc (livemedia-creator), node.
    pub group: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    pub message: String,
}

impl Finding {
    pub fn new(severity: Severity, origin: Option<Origin>, rule: Rule, message: String) -> Finding {
        Finding {
            severity,
            rule,
            group: rule.group(),
            origin,
            message,
        }
    }

    pub fn error(origin: Option<Origin>, rule: Rule, message: String) -> Finding {
        Finding::new(Severity::Error, origin, rule, message)
    }

    pub fn warning(origin: Option<Origin>, rule: Rule, message: String) -> Finding {
        Finding::new(Severity::Warning, origin, rule, message)
    }

    pub fn info(origin: Option<Origin>, rule: Rule, message: String) -> Finding {
        Finding::new(Severity::Info, origin, rule, message)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        match &self.origin {
            Some(origin) => write!(f, "{origin}: {severity}: {}", self.message),
            None => write!(f, "{severity}: {}", self.message),
        }
    }
}

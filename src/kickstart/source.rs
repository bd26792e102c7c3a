//! Reading a kickstart and everything it pulls in: `%ksappend` and static `%include`s
//! spliced in place, each line remembering the file and line it came from.
//!
//! Resolution follows pykickstart (`readKickstart`): a relative path is tried from the
//! working directory first, then from the directory of the file that includes it. An
//! include that does not exist but that the install writes itself (a `%pre` script
//! mentions it, or it lives under /tmp, /run or /mnt) is a *runtime include*: anaconda
//! reads it after running `%pre`, so it is reported, not followed.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::lexer;
use super::{Finding, Origin, Rule};

/// One physical line and where it came from.
#[derive(Debug, Clone)]
pub struct Line {
    pub origin: Origin,
    /// The line's text, without its newline.
    pub text: String,
    pub kind: LineKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// An ordinary line of the file.
    Plain,
    /// An `%include` or `%ksappend` that was spliced in: the next lines are the
    /// included file's, up to the matching `IncludeEnd`.
    IncludeStart {
        resolved: PathBuf,
    },
    IncludeEnd {
        resolved: PathBuf,
    },
    /// An `%include` that the install itself provides, left as it is.
    RuntimeInclude,
    /// An `%include` or `%ksappend` that could not be followed (reported as such).
    Unresolved,
}

/// The kickstart with its includes spliced in, and what went wrong reading it.
#[derive(Debug, Default)]
pub struct Source {
    pub lines: Vec<Line>,
    pub findings: Vec<Finding>,
    /// Every file read, the top one first.
    pub files: Vec<Rc<PathBuf>>,
    /// pykickstart reads nothing of this kickstart (the top file is unreadable or
    /// empty, or a file is not UTF-8): the findings above are all there is to say.
    pub fatal: bool,
}

/// Lines as Python's `str.splitlines()` splits them, which is how pykickstart reads a
/// kickstart: at `\n`, `\r`, `\r\n`, `\v`, `\f`, `\x1c`–`\x1e`, U+0085, U+2028 and
/// U+2029. No empty line follows a final break.
///
/// pykickstart keeps each line's break and hands the line to `shlex.split`, whose
/// whitespace is only space, tab, `\r` and `\n`: any other break stays part of the
/// line's last word (`zerombr\f` is an unknown command, `%end\f` ends nothing). So
/// `\n`, `\r` and `\r\n` are dropped here and the other breaks kept.
pub fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let end = at + c.len_utf8();
        match c {
            '\n' => lines.push(&text[start..at]),
            '\r' => {
                lines.push(&text[start..at]);
                if chars.peek().is_some_and(|&(_, next)| next == '\n') {
                    chars.next();
                    start = end + 1;
                    continue;
                }
            }
            '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
                lines.push(&text[start..end])
            }
            _ => continue,
        }
        start = end;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Python's `str.isspace()` for one character: Unicode whitespace and the ASCII
/// separators `\x1c`–`\x1f`.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// What ksvalidator calls an "Empty file": nothing but ASCII whitespace (Python's
/// `bytes.strip()`).
fn is_blank(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
}

/// Where files written at install time usually go.
const RUNTIME_DIRS: [&str; 4] = ["/tmp/", "/run/", "/mnt/", "/var/tmp/"];
/// Includes deeper than this are a cycle nobody meant.
const MAX_DEPTH: usize = 32;

/// Read `path` and what it includes. Errors reading the top file are returned as
/// findings too: the caller decides.
pub fn load(path: &Path) -> Source {
    let mut source = Source::default();
    let mut stack = Vec::new();
    // A %pre script that writes an include names its path somewhere in the top file
    // besides the %include line; keep the text to recognise such includes.
    let top_bytes = std::fs::read(path).unwrap_or_default();
    let top_text = String::from_utf8_lossy(&top_bytes).into_owned();
    read_file(path, None, &mut stack, &mut source, &top_text);
    if source.files.len() == 1 && is_blank(&top_bytes) {
        source.findings.push(Finding::error(
            Some(Origin::new(Rc::clone(&source.files[0]), 0)),
            Rule::EmptyFile,
            "the kickstart is empty (ksvalidator: \"Empty file\")".to_owned(),
        ));
        source.fatal = true;
    }
    if source.files.is_empty() {
        // The top file itself could not be read.
        source.fatal = true;
    }
    source
}

fn read_file(
    path: &Path,
    included_at: Option<&Origin>,
    stack: &mut Vec<PathBuf>,
    source: &mut Source,
    top_text: &str,
) {
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    if stack.contains(&canonical) || stack.len() >= MAX_DEPTH {
        let chain: Vec<String> = stack
            .iter()
            .chain(std::iter::once(&canonical))
            .map(|p| p.display().to_string())
            .collect();
        source.findings.push(Finding::error(
            included_at.cloned(),
            Rule::IncludeCycle,
            format!("the includes form a cycle: {}", chain.join(" → ")),
        ));
        return;
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            source.findings.push(Finding::error(
                included_at.cloned(),
                Rule::Unreadable,
                format!("cannot read {}: {err}", path.display()),
            ));
            return;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let at = err.utf8_error().valid_up_to();
            let valid = std::str::from_utf8(&err.as_bytes()[..at]).unwrap_or_default();
            // The line the bad byte is on: the breaks before it, counted as pykickstart
            // counts lines.
            let line = split_lines(&format!("{valid}x")).len();
            source.findings.push(Finding::error(
                Some(Origin::new(Rc::new(path.to_owned()), line)),
                Rule::NotUtf8,
                format!(
                    "byte {at} is not UTF-8 (0x{:02x}); pykickstart rejects the whole file",
                    err.as_bytes()[at]
                ),
            ));
            source.fatal = true;
            return;
        }
    };
    let file = Rc::new(path.to_owned());
    source.files.push(Rc::clone(&file));
    stack.push(canonical);
    let dir = path.parent().map(Path::to_owned).unwrap_or_default();
    for (index, text) in split_lines(&text).into_iter().enumerate() {
        let origin = Origin::new(Rc::clone(&file), index + 1);
        let directive = include_directive(text);
        match directive {
            Some((keyword, target)) => {
                splice(keyword, target, text, origin, &dir, stack, source, top_text);
            }
            None => source.lines.push(Line {
                origin,
                text: text.to_owned(),
                kind: LineKind::Plain,
            }),
        }
    }
    stack.pop();
}

/// `%include X` or `%ksappend X`, as pykickstart recognises them (the first word).
fn include_directive(text: &str) -> Option<(&'static str, Option<String>)> {
    let trimmed = text.trim_start();
    if !trimmed.starts_with("%include") && !trimmed.starts_with("%ksappend") {
        return None;
    }
    let words = lexer::split(text).ok()?.words;
    let keyword = match words.first().map(|w| w.text.as_str()) {
        Some("%include") => "%include",
        Some("%ksappend") => "%ksappend",
        _ => return None,
    };
    Some((
        keyword,
        words
            .get(1)
            .map(|w| w.text.clone())
            .filter(|t| !t.is_empty()),
    ))
}

#[allow(clippy::too_many_arguments)]
fn splice(
    keyword: &str,
    target: Option<String>,
    text: &str,
    origin: Origin,
    dir: &Path,
    stack: &mut Vec<PathBuf>,
    source: &mut Source,
    top_text: &str,
) {
    let Some(target) = target else {
        source.findings.push(Finding::error(
            Some(origin.clone()),
            Rule::Syntax,
            format!("{keyword} needs a file name"),
        ));
        source.lines.push(Line {
            origin,
            text: text.to_owned(),
            kind: LineKind::Unresolved,
        });
        return;
    };
    if target.contains("://") {
        source.findings.push(Finding::warning(
            Some(origin.clone()),
            Rule::RemoteInclude,
            format!("{keyword} {target}: remote files are not fetched; it is not checked"),
        ));
        source.lines.push(Line {
            origin,
            text: text.to_owned(),
            kind: LineKind::RuntimeInclude,
        });
        return;
    }
    let target_path = PathBuf::from(&target);
    let resolved = if target_path.is_absolute() || target_path.exists() {
        target_path.clone()
    } else {
        dir.join(&target_path)
    };
    if !resolved.exists() && keyword == "%include" && is_runtime(&target, top_text) {
        source.findings.push(Finding::info(
            Some(origin.clone()),
            Rule::RuntimeInclude,
            format!(
                "%include {target} is written at install time (by %pre); it is not checked here"
            ),
        ));
        source.lines.push(Line {
            origin,
            text: text.to_owned(),
            kind: LineKind::RuntimeInclude,
        });
        return;
    }
    if !resolved.exists() {
        source.findings.push(Finding::error(
            Some(origin.clone()),
            Rule::MissingInclude,
            format!(
                "{keyword} {target}: no such file (looked in the working directory and in {})",
                if dir.as_os_str().is_empty() {
                    ".".to_owned()
                } else {
                    dir.display().to_string()
                }
            ),
        ));
        source.lines.push(Line {
            origin,
            text: text.to_owned(),
            kind: LineKind::Unresolved,
        });
        return;
    }
    source.lines.push(Line {
        origin: origin.clone(),
        text: text.to_owned(),
        kind: LineKind::IncludeStart {
            resolved: resolved.clone(),
        },
    });
    read_file(&resolved, Some(&origin), stack, source, top_text);
    source.lines.push(Line {
        origin,
        text: text.to_owned(),
        kind: LineKind::IncludeEnd { resolved },
    });
}

/// Whether a missing include is one the install writes itself: it lives where
/// installs write scratch files, or the top file mentions it besides including it.
fn is_runtime(target: &str, top_text: &str) -> bool {
    RUNTIME_DIRS.iter().any(|d| target.starts_with(d)) || top_text.matches(target).count() > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_as_python_splitlines_does() {
        // Python: "a\rb\r\nc\x0cd\u2028e\n".splitlines(True)
        //   == ['a\r', 'b\r\n', 'c\x0c', 'd\u2028', 'e\n']
        assert_eq!(
            split_lines("a\rb\r\nc\x0cd\u{2028}e\n"),
            ["a", "b", "c\x0c", "d\u{2028}", "e"]
        );
        assert_eq!(split_lines("a\n\nb"), ["a", "", "b"]);
        assert_eq!(split_lines("\r\n"), [""]);
        assert!(split_lines("").is_empty());
        assert_eq!(
            split_lines("x\x1c\x1d\x1e\u{85}"),
            ["x\x1c", "\x1d", "\x1e", "\u{85}"]
        );
    }

    #[test]
    fn blank_is_what_bytes_strip_removes() {
        assert!(is_blank(b" \t\r\n\x0b\x0c"));
        assert!(is_blank(b""));
        assert!(!is_blank(b"\x1c"));
        assert!(!is_blank(b"#"));
    }
}

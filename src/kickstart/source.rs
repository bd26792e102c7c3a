//! Reading a kickstart and everything it pulls in: `%ksappend` and static `%include`s
//! spliced in place, each line remembering the file and line it came from.
//!
//! Resolution follows pykickstart (`readKickstart`): a relative path is tried from the
//! working directory first, then from the directory of the file that includes it. An
//! include that does not exist but that a `%pre` script of the kickstart writes (that
//! exact path: a redirection, `cp`, `tee`, `curl -o`, `wget -O` …) is a *runtime
//! include*: anaconda reads it after running `%pre`, so it is reported, not followed.
//! Any other missing include is an error, as ksflatten says.

use std::collections::HashSet;
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
    /// Bytes of every file read so far.
    bytes: u64,
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

/// How deep includes may nest: pykickstart (3.78, `ksvalidator -i`) follows a chain
/// of 244 files before Python's recursion limit stops it, so nothing it accepts is
/// refused here.
const MAX_DEPTH: usize = 256;
/// The most a kickstart with everything it includes may hold: a fan-out of includes
/// (each file including the next twice, 20 deep) would otherwise splice a million
/// copies.
const MAX_LINES: usize = 1_000_000;
const MAX_BYTES: u64 = 64 << 20;

/// Read `path` and what it includes. Errors reading the top file are returned as
/// findings too: the caller decides.
pub fn load(path: &Path) -> Source {
    let mut source = Source::default();
    let mut stack = Vec::new();
    read_file(path, None, &mut stack, &mut source, None);
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
    written: Option<&HashSet<String>>,
) {
    if source.fatal {
        return;
    }
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    if !may_read(path, &canonical, included_at, stack, source) {
        return;
    }
    let Some(text) = read_text(path, included_at, source) else {
        return;
    };
    let file = Rc::new(path.to_owned());
    source.files.push(Rc::clone(&file));
    // The top file: what ksvalidator calls empty, and the files its %pre scripts write
    // (the only includes that may be missing when it is checked), for every include.
    let top_written;
    let written = match written {
        Some(written) => written,
        None => {
            if is_blank(text.as_bytes()) {
                source.findings.push(Finding::error(
                    Some(Origin::new(Rc::clone(&file), 0)),
                    Rule::EmptyFile,
                    "the kickstart is empty (ksvalidator: \"Empty file\")".to_owned(),
                ));
                source.fatal = true;
                return;
            }
            top_written = pre_writes(&text);
            &top_written
        }
    };
    stack.push(canonical);
    let dir = path.parent().map(Path::to_owned).unwrap_or_default();
    for (index, text) in split_lines(&text).into_iter().enumerate() {
        if source.fatal {
            break;
        }
        if source.lines.len() >= MAX_LINES {
            too_large(source, included_at, format!("more than {MAX_LINES} lines"));
            break;
        }
        let origin = Origin::new(Rc::clone(&file), index + 1);
        let directive = include_directive(text);
        match directive {
            Some((keyword, target)) => {
                splice(keyword, target, text, origin, &dir, stack, source, written);
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

/// Whether `path` may be read at this point of the include chain: not a cycle, not
/// deeper than [`MAX_DEPTH`]; a finding says why not.
fn may_read(
    path: &Path,
    canonical: &PathBuf,
    included_at: Option<&Origin>,
    stack: &[PathBuf],
    source: &mut Source,
) -> bool {
    if stack.contains(canonical) {
        let chain: Vec<String> = stack
            .iter()
            .chain(std::iter::once(canonical))
            .map(|p| p.display().to_string())
            .collect();
        source.findings.push(Finding::error(
            included_at.cloned(),
            Rule::IncludeCycle,
            format!("the includes form a cycle: {}", chain.join(" → ")),
        ));
        return false;
    }
    if stack.len() >= MAX_DEPTH {
        source.findings.push(Finding::error(
            included_at.cloned(),
            Rule::IncludeTooDeep,
            format!(
                "includes nested more than {MAX_DEPTH} deep ({} is the next); pykickstart gives up \
                 at about 244",
                path.display()
            ),
        ));
        return false;
    }
    true
}

/// The file's text, within the cap on what a kickstart may hold; a finding says why
/// not (a file that is not UTF-8 ends the check, as it ends pykickstart's).
fn read_text(path: &Path, included_at: Option<&Origin>, source: &mut Source) -> Option<String> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    source.bytes = source.bytes.saturating_add(size);
    if source.bytes > MAX_BYTES {
        too_large(
            source,
            included_at,
            format!("more than {} MiB", MAX_BYTES >> 20),
        );
        return None;
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            source.findings.push(Finding::error(
                included_at.cloned(),
                Rule::Unreadable,
                format!("cannot read {}: {err}", path.display()),
            ));
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
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
            None
        }
    }
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
    written: &HashSet<String>,
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
    if !resolved.exists() && keyword == "%include" && written.contains(&target) {
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
    read_file(&resolved, Some(&origin), stack, source, Some(written));
    source.lines.push(Line {
        origin,
        text: text.to_owned(),
        kind: LineKind::IncludeEnd { resolved },
    });
}

/// The spliced kickstart grew past what any real one holds: stop reading.
fn too_large(source: &mut Source, at: Option<&Origin>, what: String) {
    source.findings.push(Finding::error(
        at.cloned(),
        Rule::TooLarge,
        format!("the kickstart with its includes is {what}: a fan-out of includes?"),
    ));
    source.fatal = true;
}

/// The files the `%pre` scripts of a kickstart write, by exact path: redirection
/// targets (`> F`, `>> F`, `2>F`), the last argument of `cp`, `mv`, `install` and
/// `ln`, `tee`'s files, `curl -o F`/`--output F` and `wget -O F`/`--output-document F`.
/// Only such an include may be missing when the kickstart is checked: anaconda reads
/// it after running `%pre`.
fn pre_writes(text: &str) -> HashSet<String> {
    let mut written = HashSet::new();
    let mut in_pre = false;
    for line in split_lines(text) {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.starts_with('%') {
            // %pre, and its options; %pre-install runs after the kickstart is read.
            in_pre = first == "%pre";
            continue;
        }
        if !in_pre {
            continue;
        }
        let words: Vec<String> = match lexer::split(line) {
            Ok(split) => split.words.into_iter().map(|w| w.text).collect(),
            Err(_) => line.split_whitespace().map(str::to_owned).collect(),
        };
        for command in words.split(|w| matches!(w.as_str(), ";" | "&&" | "||" | "|" | "&")) {
            scan_command(command, &mut written);
        }
    }
    written
}

fn scan_command(words: &[String], written: &mut HashSet<String>) {
    let mut args = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = words[i].trim_start_matches(|c: char| c.is_ascii_digit());
        if let Some(target) = word.strip_prefix(">>").or_else(|| word.strip_prefix('>')) {
            // `>F`, or `>` then F (a `>&2` duplicates a descriptor: no file).
            let target = if target.is_empty() {
                i += 1;
                words.get(i).map(String::as_str).unwrap_or("")
            } else {
                target
            };
            if !target.is_empty() && !target.starts_with('&') {
                written.insert(target.to_owned());
            }
        } else {
            args.push(words[i].as_str());
        }
        i += 1;
    }
    let Some((&program, rest)) = args.split_first() else {
        return;
    };
    let program = program.rsplit('/').next().unwrap_or(program);
    let operands: Vec<&str> = rest
        .iter()
        .copied()
        .filter(|a| !a.starts_with('-'))
        .collect();
    let after = |flags: &[&str]| -> Vec<String> {
        let mut found = Vec::new();
        for (at, arg) in rest.iter().enumerate() {
            for flag in flags {
                if arg == flag {
                    if let Some(next) = rest.get(at + 1) {
                        found.push((*next).to_owned());
                    }
                } else if let Some(value) = arg.strip_prefix(&format!("{flag}=")) {
                    found.push(value.to_owned());
                } else if flag.len() == 2
                    && !flag.starts_with("--")
                    && let Some(value) = arg.strip_prefix(flag)
                    && !value.is_empty()
                {
                    found.push(value.to_owned());
                }
            }
        }
        found
    };
    match program {
        "cp" | "mv" | "install" | "ln" => {
            if operands.len() >= 2
                && let Some(last) = operands.last()
            {
                written.insert((*last).to_owned());
            }
        }
        "tee" => written.extend(operands.iter().map(|f| (*f).to_owned())),
        "curl" => written.extend(after(&["-o", "--output"])),
        "wget" => written.extend(after(&["-O", "--output-document"])),
        _ => {}
    }
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

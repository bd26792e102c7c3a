//! From lines to commands and sections, with pykickstart's state machine
//! (`KickstartParser._stateMachine` and `_readSection`):
//!
//! * outside sections, blank and `#` lines are skipped and every other line is split
//!   into words; a first word starting with `%` opens a section, anything else is a
//!   command (names are case-sensitive);
//! * script sections (`%pre`, `%pre-install`, `%post`, `%onerror`, `%traceback`),
//!   `%certificate`, `%addon` and `%anaconda` keep every line verbatim, except lines
//!   whose first word is `%end` or a section name; `%packages` drops blank lines and
//!   `#` comments;
//! * a section that meets another section header or the end of the input before its
//!   `%end` is an error ("Section %post does not end with %end.").
//!
//! Unlike pykickstart, a broken line does not stop the parse: every problem is
//! reported, each with its file and line.

use super::lexer::{self, SplitError};
use super::source::{Line, LineKind, Source};
use super::{Finding, Origin, Rule};

/// Sections pykickstart knows. `%certificate` is F42 and later; older handlers treat
/// it as unknown, which the checker reports.
pub const SECTIONS: [&str; 9] = [
    "%pre",
    "%pre-install",
    "%post",
    "%onerror",
    "%traceback",
    "%packages",
    "%certificate",
    "%addon",
    "%anaconda",
];

#[derive(Debug, Clone)]
pub struct Command {
    pub name: String,
    /// The words after the name.
    pub args: Vec<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct Section {
    /// `%post`, `%packages`, …
    pub name: String,
    /// The header's words after the name.
    pub args: Vec<String>,
    pub origin: Origin,
    /// The body as written (comments included, except in `%packages`).
    pub body: Vec<Line>,
    /// Where `%end` was, when there was one.
    pub end: Option<Origin>,
}

impl Section {
    pub fn is_script(&self) -> bool {
        crate::kickstart::model::ScriptSection::from_header(&self.name).is_some()
    }
}

#[derive(Debug, Clone)]
pub enum Item {
    Command(Command),
    Section(Section),
}

/// A parsed kickstart.
#[derive(Debug, Default)]
pub struct Kickstart {
    pub items: Vec<Item>,
    pub findings: Vec<Finding>,
}

impl Kickstart {
    pub fn commands(&self) -> impl Iterator<Item = &Command> {
        self.items.iter().filter_map(|item| match item {
            Item::Command(c) => Some(c),
            Item::Section(_) => None,
        })
    }

    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.items.iter().filter_map(|item| match item {
            Item::Section(s) => Some(s),
            Item::Command(_) => None,
        })
    }

    /// Every command of this name, in order.
    pub fn command_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Command> {
        self.commands().filter(move |c| c.name == name)
    }

    /// The last one: single-instance commands are last-wins.
    pub fn command(&self, name: &str) -> Option<&Command> {
        self.commands().filter(|c| c.name == name).last()
    }
}

/// pykickstart's `_isBlankOrComment`: Python whitespace only, or a `#` after it.
fn blank_or_comment(text: &str) -> bool {
    let trimmed = text.trim_start_matches(super::source::py_isspace);
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// The first word of a line as `shlex.split` cuts it (space, tab, `\r`, `\n`):
/// enough to tell `%end` and section headers from the rest.
fn first_shlex_word(text: &str) -> &str {
    text.trim_start_matches(super::source::py_isspace)
        .split([' ', '\t', '\r', '\n'])
        .next()
        .unwrap_or("")
}

/// Split a line, turning what pykickstart would stop on (or silently mangle) into
/// findings.
fn split_line(line: &Line, findings: &mut Vec<Finding>) -> Option<Vec<String>> {
    // pykickstart's lines keep their newline, which matters for a trailing backslash.
    let mut text = line.text.clone();
    text.push('\n');
    match lexer::split(&text) {
        Ok(split) => {
            if let Some(at) = split.cut_inside_word {
                let word = split
                    .words
                    .last()
                    .map(|w| w.text.clone())
                    .unwrap_or_default();
                findings.push(Finding::warning(
                    Some(line.origin.clone()),
                    Rule::HashCut,
                    format!(
                        "the '#' at column {} starts a comment, so the word ends as {word:?} \
                         and the rest of the line is ignored; quote the value if the '#' \
                         belongs to it",
                        at + 1
                    ),
                ));
            }
            if split.trailing_backslash {
                findings.push(Finding::error(
                    Some(line.origin.clone()),
                    Rule::TrailingBackslash,
                    "the line ends in a backslash, but kickstart has no line continuation: \
                     the next line is read as a command of its own; join the lines"
                        .to_owned(),
                ));
            }
            Some(split.words.into_iter().map(|w| w.text).collect())
        }
        Err(err) => {
            let message = match err {
                SplitError::NoClosingQuotation { quote, column } => {
                    format!("no closing quotation: the {quote} at column {column} is never closed")
                }
                SplitError::NoEscapedCharacter => err.to_string(),
            };
            findings.push(Finding::error(
                Some(line.origin.clone()),
                Rule::Syntax,
                message,
            ));
            None
        }
    }
}

/// Parse the lines of a loaded kickstart.
pub fn parse(source: &Source) -> Kickstart {
    let mut ks = Kickstart {
        items: Vec::new(),
        findings: source.findings.clone(),
    };
    let lines = &source.lines;
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        i += 1;
        if line.kind != LineKind::Plain || blank_or_comment(&line.text) {
            continue;
        }
        let Some(words) = split_line(line, &mut ks.findings) else {
            continue;
        };
        let Some(first) = words.first() else {
            continue;
        };
        if first.starts_with('%') {
            if first == "%end" {
                ks.findings.push(Finding::error(
                    Some(line.origin.clone()),
                    Rule::UnknownSection,
                    "%end without a section to end".to_owned(),
                ));
                continue;
            }
            let known = SECTIONS.contains(&first.as_str());
            if !known {
                ks.findings.push(Finding::error(
                    Some(line.origin.clone()),
                    Rule::UnknownSection,
                    format!("Unknown kickstart section: {first}"),
                ));
            }
            let (section, next) = read_section(lines, i, line, words, &mut ks.findings);
            i = next;
            ks.items.push(Item::Section(section));
        } else {
            ks.items.push(Item::Command(Command {
                name: first.clone(),
                args: words[1..].to_vec(),
                origin: line.origin.clone(),
            }));
        }
    }
    ks
}

/// Read a section's body from `lines[start..]`; returns it and where to go on.
fn read_section(
    lines: &[Line],
    start: usize,
    header: &Line,
    words: Vec<String>,
    findings: &mut Vec<Finding>,
) -> (Section, usize) {
    let name = words[0].clone();
    let all_lines = name != "%packages";
    let mut section = Section {
        name,
        args: words[1..].to_vec(),
        origin: header.origin.clone(),
        body: Vec::new(),
        end: None,
    };
    let mut i = start;
    let mut last_origin = header.origin.clone();
    while i < lines.len() {
        let line = &lines[i];
        if line.kind != LineKind::Plain {
            i += 1;
            continue;
        }
        last_origin = line.origin.clone();
        let first = first_shlex_word(&line.text);
        if first.starts_with('%') {
            if first == "%end" {
                section.end = Some(line.origin.clone());
                check_heredoc(&section, findings);
                return (section, i + 1);
            }
            if SECTIONS.contains(&first) {
                findings.push(Finding::error(
                    Some(line.origin.clone()),
                    Rule::MissingEnd,
                    format!("Section {} does not end with %end.", section.name),
                ));
                return (section, i);
            }
        }
        if all_lines || !blank_or_comment(&line.text) {
            section.body.push(line.clone());
        }
        i += 1;
    }
    findings.push(Finding::error(
        Some(last_origin),
        Rule::MissingEnd,
        format!("Section {} does not end with %end.", section.name),
    ));
    (section, i)
}

/// A `%end` that closes a script while a here-document is open: the rest of the
/// here-document is read as kickstart commands.
fn check_heredoc(section: &Section, findings: &mut Vec<Finding>) {
    if !section.is_script() {
        return;
    }
    let mut open: Option<(String, Origin)> = None;
    for line in &section.body {
        if let Some((delimiter, _)) = &open {
            if line.text.trim() == delimiter {
                open = None;
            }
            continue;
        }
        if let Some(delimiter) = heredoc_delimiter(&line.text) {
            open = Some((delimiter, line.origin.clone()));
        }
    }
    if let (Some((delimiter, origin)), Some(end)) = (open, &section.end) {
        findings.push(Finding::error(
            Some(end.clone()),
            Rule::EndInHeredoc,
            format!(
                "this %end closes {} while the here-document opened at line {} (ending with \
                 {delimiter}) is still open: the lines after it are read as kickstart commands",
                section.name, origin.line
            ),
        ));
    }
}

/// The delimiter of a here-document started on this shell line (`<<EOF`, `<< 'EOF'`,
/// `<<-"EOF"`).
fn heredoc_delimiter(text: &str) -> Option<String> {
    let at = text.find("<<")?;
    let rest = &text[at + 2..];
    if rest.starts_with('<') {
        return None; // a here-string
    }
    let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
    let word: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && !";|&)".contains(*c))
        .filter(|c| !matches!(c, '\'' | '"' | '\\'))
        .collect();
    (!word.is_empty()).then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse_text(text: &str) -> Kickstart {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks.cfg");
        std::fs::write(&path, text).unwrap();
        parse(&super::super::source::load(Path::new(&path)))
    }

    fn messages(ks: &Kickstart) -> Vec<(usize, String)> {
        ks.findings
            .iter()
            .map(|f| (f.origin.as_ref().map_or(0, |o| o.line), f.message.clone()))
            .collect()
    }

    #[test]
    fn commands_and_sections_in_order() {
        let ks = parse_text(
            "# comment\nlang en_US.UTF-8\n\n%packages --nocore\n@core # the base\n\n-foo\n%end\n%post --nochroot\n\n# kept\necho hi\n%end\n",
        );
        assert!(ks.findings.is_empty(), "{:?}", messages(&ks));
        assert_eq!(ks.command("lang").unwrap().args, ["en_US.UTF-8"]);
        let sections: Vec<&Section> = ks.sections().collect();
        assert_eq!(sections[0].name, "%packages");
        assert_eq!(sections[0].args, ["--nocore"]);
        let body: Vec<&str> = sections[0].body.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(body, ["@core # the base", "-foo"]);
        let body: Vec<&str> = sections[1].body.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(body, ["", "# kept", "echo hi"]);
        assert_eq!(sections[1].end.as_ref().unwrap().line, 13);
    }

    #[test]
    fn a_missing_end_is_reported_where_pykickstart_reports_it() {
        let ks = parse_text("%post\necho\n%packages\n@core\n");
        assert_eq!(
            messages(&ks),
            [
                (3, "Section %post does not end with %end.".to_owned()),
                (4, "Section %packages does not end with %end.".to_owned())
            ]
        );
    }

    #[test]
    fn lines_pykickstart_mangles_are_named() {
        let ks = parse_text(
            "rootpw --plaintext pa#ss\nnetwork --bootproto=static \\\n--ip=10.0.0.2\nuser --gecos=\"Bob\n%Packages\n%end\n%post\ncat > /x <<EOF\n%end\nEOF\n%end\n",
        );
        let found = messages(&ks);
        assert!(
            found[0].0 == 1 && found[0].1.contains("column 22"),
            "{found:?}"
        );
        assert!(
            found[1].0 == 2 && found[1].1.contains("no line continuation"),
            "{found:?}"
        );
        assert!(
            found[2].0 == 4 && found[2].1.contains("no closing quotation"),
            "{found:?}"
        );
        assert_eq!(
            found[3],
            (5, "Unknown kickstart section: %Packages".to_owned())
        );
        assert!(
            found[4].0 == 9 && found[4].1.contains("here-document"),
            "{found:?}"
        );
        // The heredoc's tail becomes a command, as in pykickstart.
        assert!(ks.commands().any(|c| c.name == "EOF"));
    }
}

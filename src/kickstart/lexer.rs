//! Splitting a kickstart line into words the way pykickstart does: Python's
//! `shlex.split(line, comments=True)` in POSIX mode.
//!
//! Whitespace is space, tab, CR and LF; `'…'` and `"…"` group; a backslash outside quotes
//! takes the next character literally (so a trailing backslash before the newline gives
//! the word "\n": kickstarts have no line continuation); inside double quotes it escapes
//! only `"` and `\`; an unquoted `#` ends the line, even in the middle of a word.
//! Unlike shlex, errors here know their column, and the words remember whether a `#`
//! cut them short, which pykickstart never says.

/// One word of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// Byte offset in the line where the word starts.
    pub start: usize,
}

/// A line split into words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Split {
    pub words: Vec<Word>,
    /// Where an unquoted `#` glued to a word cut the line (the word before it lost its
    /// tail: `rootpw pa#ss` sets the password "pa").
    pub cut_inside_word: Option<usize>,
    /// The line ends in a backslash before its newline: meant as a continuation,
    /// which kickstart does not have.
    pub trailing_backslash: bool,
}

/// Why a line cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("no closing quotation for the {quote} opened at column {column}")]
    NoClosingQuotation { quote: char, column: usize },
    #[error("a backslash at the end of the input escapes nothing")]
    NoEscapedCharacter,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Space,
    Word,
    Quote(char),
    Escape(Escaped),
}

/// Where a backslash was met: outside quotes, or inside double quotes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Escaped {
    Word,
    Quote(char),
}

const WHITESPACE: [char; 4] = [' ', '\t', '\r', '\n'];

/// Split `line` (with or without its trailing newline).
pub fn split(line: &str) -> Result<Split, SplitError> {
    let mut out = Split::default();
    let mut state = State::Space;
    let mut token = String::new();
    let mut token_start = 0;
    // A quoted empty string ("") is still a word.
    let mut quoted = false;
    let mut quote_column = 0;
    let mut chars = line.char_indices().peekable();

    let emit = |out: &mut Split, token: &mut String, start: usize| {
        out.words.push(Word {
            text: std::mem::take(token),
            start,
        });
    };

    while let Some((at, c)) = chars.next() {
        match state {
            State::Space => {
                if WHITESPACE.contains(&c) {
                    continue;
                }
                token_start = at;
                quoted = false;
                match c {
                    '#' => break,
                    '\\' => state = State::Escape(Escaped::Word),
                    '\'' | '"' => {
                        quote_column = at + 1;
                        state = State::Quote(c);
                    }
                    _ => {
                        token.push(c);
                        state = State::Word;
                    }
                }
            }
            State::Word => match c {
                _ if WHITESPACE.contains(&c) => {
                    emit(&mut out, &mut token, token_start);
                    quoted = false;
                    state = State::Space;
                }
                '#' => {
                    out.cut_inside_word = Some(at);
                    break;
                }
                '\\' => state = State::Escape(Escaped::Word),
                '\'' | '"' => {
                    quote_column = at + 1;
                    state = State::Quote(c);
                }
                _ => token.push(c),
            },
            State::Quote(q) => {
                quoted = true;
                if c == q {
                    state = State::Word;
                } else if c == '\\' && q == '"' {
                    state = State::Escape(Escaped::Quote(q));
                } else {
                    token.push(c);
                }
            }
            State::Escape(from) => {
                if from == Escaped::Word && c == '\n' && chars.peek().is_none() {
                    out.trailing_backslash = true;
                }
                // Inside double quotes only the quote and the backslash are escapable;
                // before anything else the backslash stays.
                if let Escaped::Quote(q) = from
                    && c != q
                    && c != '\\'
                {
                    token.push('\\');
                }
                token.push(c);
                state = match from {
                    Escaped::Word => State::Word,
                    Escaped::Quote(q) => State::Quote(q),
                };
            }
        }
    }
    match state {
        State::Quote(quote) => Err(SplitError::NoClosingQuotation {
            quote,
            column: quote_column,
        }),
        State::Escape(_) => Err(SplitError::NoEscapedCharacter),
        State::Word => {
            emit(&mut out, &mut token, token_start);
            Ok(out)
        }
        State::Space => {
            if !token.is_empty() || quoted {
                emit(&mut out, &mut token, token_start);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split(line)
            .unwrap()
            .words
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    #[test]
    fn splits_as_shlex_does() {
        assert_eq!(words("a b#c d\n"), ["a", "b"]);
        assert_eq!(words("a \"b#c\" d\n"), ["a", "b#c", "d"]);
        assert_eq!(words("a 'x\\y' \"p\\\"q\\n\"\n"), ["a", "x\\y", "p\"q\\n"]);
        assert_eq!(words("net \\\n"), ["net", "\n"]);
        assert_eq!(words(" a \"\" b\n"), ["a", "", "b"]);
        assert_eq!(words("a\\ b\n"), ["a b"]);
        assert_eq!(words("#x\n"), Vec::<String>::new());
        assert_eq!(words("ab\"c d\"ef\n"), ["abc def"]);
        assert_eq!(words("a\tb\rc\n"), ["a", "b", "c"]);
        assert_eq!(words("x \\#y\n"), ["x", "#y"]);
        assert_eq!(
            words("--append=\"console=ttyS0 quiet\""),
            ["--append=console=ttyS0 quiet"]
        );
    }

    #[test]
    fn says_what_shlex_does_not() {
        let cut = split("rootpw --plaintext pa#ss\n").unwrap();
        assert_eq!(cut.cut_inside_word, Some(21));
        assert!(
            split("rootpw --plaintext pa #ss\n")
                .unwrap()
                .cut_inside_word
                .is_none()
        );
        assert!(
            split("network --bootproto=static \\\n")
                .unwrap()
                .trailing_backslash
        );
        assert_eq!(
            split("user --gecos=\"Bob\n"),
            Err(SplitError::NoClosingQuotation {
                quote: '"',
                column: 14
            })
        );
        assert_eq!(split("a \\"), Err(SplitError::NoEscapedCharacter));
    }
}

//! Options of the commands an appliance kickstart uses, per version (generated from
//! pykickstart's parsers into `handlers.txt`, see `version.rs`), and argument
//! parsing with argparse's rules as pykickstart applies them (`KSOptionParser`):
//! `--opt=value` and `--opt value`, unambiguous prefixes of long options, last one
//! wins, typed values, required options and positionals. Messages are argparse's.
//!
//! A spec is a line of our own notation:
//! `<name>` one positional, `<name?>` at most one, `<name*>` any number;
//! `--a|--b` a flag with two spellings; `--a=` takes a value; `--a=int`, `--a=bool`
//! (pykickstart's on/off/yes/no/true/false/1/0) and `--a={x,y}` (a choice) are typed;
//! a trailing `!` makes an option required, `~` marks it deprecated.

use std::collections::BTreeMap;

use super::version::Version;

/// What an option's value must be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Flag,
    Text,
    Int,
    Bool,
    Choice(Vec<String>),
}

#[derive(Debug, Clone)]
struct OptSpec {
    names: Vec<String>,
    kind: Kind,
    required: bool,
    deprecated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arity {
    One,
    Optional,
    Any,
}

#[derive(Debug, Clone)]
struct PosSpec {
    name: String,
    arity: Arity,
}

/// A command's parsed spec.
#[derive(Debug, Clone)]
pub struct Spec {
    options: Vec<OptSpec>,
    positionals: Vec<PosSpec>,
}

/// Arguments as the command received them: option values by their first spelling,
/// positionals in order.
#[derive(Debug, Default, Clone)]
pub struct Parsed {
    /// `--name` → value (`""` for flags). Last one wins.
    pub options: BTreeMap<String, String>,
    pub positionals: Vec<String>,
    /// Deprecated options that were used.
    pub deprecated: Vec<String>,
}

impl Parsed {
    pub fn has(&self, option: &str) -> bool {
        self.options.contains_key(option)
    }

    pub fn get(&self, option: &str) -> Option<&str> {
        self.options.get(option).map(String::as_str)
    }
}

impl Spec {
    pub fn parse(notation: &str) -> Spec {
        let mut spec = Spec {
            options: Vec::new(),
            positionals: Vec::new(),
        };
        for token in notation.split_whitespace() {
            if let Some(pos) = token.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
                let (name, arity) = match pos.chars().last() {
                    Some('?') => (&pos[..pos.len() - 1], Arity::Optional),
                    Some('*') => (&pos[..pos.len() - 1], Arity::Any),
                    _ => (pos, Arity::One),
                };
                spec.positionals.push(PosSpec {
                    name: name.to_owned(),
                    arity,
                });
                continue;
            }
            let mut token = token;
            let mut required = false;
            let mut deprecated = false;
            loop {
                if let Some(t) = token.strip_suffix('!') {
                    required = true;
                    token = t;
                } else if let Some(t) = token.strip_suffix('~') {
                    deprecated = true;
                    token = t;
                } else {
                    break;
                }
            }
            let (names, kind) = match token.split_once('=') {
                None => (token, Kind::Flag),
                Some((names, "")) => (names, Kind::Text),
                Some((names, "int")) => (names, Kind::Int),
                Some((names, "bool")) => (names, Kind::Bool),
                Some((names, choices)) => (
                    names,
                    Kind::Choice(
                        choices
                            .trim_start_matches('{')
                            .trim_end_matches('}')
                            .split(',')
                            .map(str::to_owned)
                            .collect(),
                    ),
                ),
            };
            spec.options.push(OptSpec {
                names: names.split('|').map(str::to_owned).collect(),
                kind,
                required,
                deprecated,
            });
        }
        spec
    }

    /// Every option spelling.
    pub fn option_names(&self) -> Vec<String> {
        self.options
            .iter()
            .flat_map(|o| o.names.iter().cloned())
            .collect()
    }

    /// Find the option `name` stands for: exact, or the only one it is a prefix of.
    fn lookup(&self, name: &str) -> Result<Option<&OptSpec>, String> {
        if let Some(exact) = self
            .options
            .iter()
            .find(|o| o.names.iter().any(|n| n == name))
        {
            return Ok(Some(exact));
        }
        let matches: Vec<(&OptSpec, &String)> = self
            .options
            .iter()
            .flat_map(|o| o.names.iter().map(move |n| (o, n)))
            .filter(|(_, n)| n.starts_with(name))
            .collect();
        match matches.as_slice() {
            [] => Ok(None),
            [(only, _)] => Ok(Some(only)),
            many => Err(format!(
                "ambiguous option: {name} could match {}",
                many.iter()
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Parse a command's words (after its name).
    pub fn apply(&self, args: &[String]) -> Result<Parsed, String> {
        let mut parsed = Parsed::default();
        let mut unrecognized: Vec<String> = Vec::new();
        let mut loose: Vec<String> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            let Some(option) = self.classify(arg)? else {
                loose.push(arg.clone());
                continue;
            };
            let Some(option) = option else {
                unrecognized.push(arg.clone());
                continue;
            };
            let explicit = arg.split_once('=').map(|(_, value)| value.to_owned());
            let shown = &option.names[0];
            let value = match (&option.kind, explicit) {
                (Kind::Flag, Some(value)) => {
                    return Err(format!(
                        "argument {}: ignored explicit argument '{value}'",
                        option.names.join("/")
                    ));
                }
                (Kind::Flag, None) => String::new(),
                (_, Some(value)) => value,
                (_, None) => match args.get(i) {
                    Some(next) if self.classify(next)?.is_none() => {
                        i += 1;
                        next.clone()
                    }
                    _ => {
                        return Err(format!(
                            "argument {}: expected one argument",
                            option.names.join("/")
                        ));
                    }
                },
            };
            check_value(option, &value)?;
            if option.deprecated && !parsed.deprecated.contains(shown) {
                parsed.deprecated.push(shown.clone());
            }
            parsed.options.insert(shown.clone(), value);
        }
        // Positionals take what they can, in order.
        let mut loose = loose.into_iter();
        let mut missing = Vec::new();
        for pos in &self.positionals {
            match pos.arity {
                Arity::One => match loose.next() {
                    Some(value) => parsed.positionals.push(value),
                    None => missing.push(pos.name.clone()),
                },
                Arity::Optional => parsed.positionals.extend(loose.next()),
                Arity::Any => parsed.positionals.extend(loose.by_ref()),
            }
        }
        unrecognized.extend(loose);
        for option in &self.options {
            if option.required && !parsed.has(&option.names[0]) {
                missing.push(option.names.join("/"));
            }
        }
        if !missing.is_empty() {
            return Err(format!(
                "the following arguments are required: {}",
                missing.join(", ")
            ));
        }
        if !unrecognized.is_empty() {
            return Err(format!(
                "unrecognized arguments: {}",
                unrecognized.join(" ")
            ));
        }
        Ok(parsed)
    }
}

impl Spec {
    /// argparse's `_parse_optional`: `None` for a positional; `Some(Some(option))`
    /// for a known option (exactly, before an '=', or by a unique prefix);
    /// `Some(None)` for an unknown one. A word with a space or a negative number that
    /// matches no option is a positional.
    fn classify(&self, arg: &str) -> Result<Option<Option<&OptSpec>>, String> {
        if !arg.starts_with('-') || arg.len() == 1 {
            return Ok(None);
        }
        let name = arg.split_once('=').map_or(arg, |(name, _)| name);
        if let Some(option) = self.lookup(name)? {
            return Ok(Some(Some(option)));
        }
        if arg[1..].parse::<f64>().is_ok() || arg.contains(' ') {
            return Ok(None);
        }
        Ok(Some(None))
    }
}

fn check_value(option: &OptSpec, value: &str) -> Result<(), String> {
    let name = option.names.join("/");
    match &option.kind {
        Kind::Int => {
            let digits = value.trim().trim_start_matches(['+', '-']).replace('_', "");
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!("argument {name}: invalid int value: '{value}'"));
            }
        }
        Kind::Bool => {
            let known = ["on", "yes", "true", "1", "off", "no", "false", "0"];
            if !known.contains(&value.to_ascii_lowercase().as_str()) {
                return Err(format!("argument {name}: invalid boolean value: '{value}'"));
            }
        }
        Kind::Choice(choices) => {
            if !choices.iter().any(|c| c == value) {
                return Err(format!(
                    "argument {name}: invalid choice: '{value}' (choose from {})",
                    choices
                        .iter()
                        .map(|c| format!("'{c}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Kind::Flag | Kind::Text => {}
    }
    Ok(())
}

/// The option notation of a typed command under `version`; `None` for commands that
/// are parsed generically.
/// The parsed spec of `command` under `version`, parsed once per kickstart check:
/// a kickstart repeats commands (a hundred thousand `part` lines), not specs.
#[derive(Default)]
pub struct SpecCache {
    specs: std::collections::HashMap<String, Option<Spec>>,
}

impl SpecCache {
    pub fn get(&mut self, version: Version, command: &str) -> Option<&Spec> {
        if !self.specs.contains_key(command) {
            let spec = spec_notation(version, command).map(|n| Spec::parse(&n));
            self.specs.insert(command.to_owned(), spec);
        }
        self.specs.get(command).and_then(Option::as_ref)
    }
}

/// The option spec of a command nodeimg types, under `version`: generated from
/// pykickstart's own parser for it (`handlers.txt`), with the options whose use
/// pykickstart warns about marked deprecated.
pub fn spec_notation(version: Version, command: &str) -> Option<String> {
    version.generated_spec(command).map(str::to_owned)
}

/// `%packages` header options.
pub fn packages_notation(version: Version) -> String {
    version
        .generated_spec("%packages")
        .unwrap_or_default()
        .to_owned()
}

/// Script section header options (`%pre`, `%post` …).
pub fn script_notation(version: Version, section: &str) -> &'static str {
    version.generated_spec(section).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn argparse_rules() {
        let spec = Spec::parse(&spec_notation(Version::rhel(9), "part").unwrap());
        let parsed = spec
            .apply(&words(
                "/ --size 5120 --fstype=ext4 --fsopt=discard --ondrive sda",
            ))
            .unwrap();
        assert_eq!(parsed.positionals, ["/"]);
        assert_eq!(parsed.get("--size"), Some("5120"));
        assert_eq!(parsed.get("--fstype"), Some("ext4"));
        assert_eq!(parsed.get("--fsoptions"), Some("discard"));
        assert_eq!(parsed.get("--ondisk"), Some("sda"));
        assert_eq!(
            spec.apply(&words("/ --size=abc")).unwrap_err(),
            "argument --size: invalid int value: 'abc'"
        );
        assert_eq!(
            spec.apply(&words("/ --bogus")).unwrap_err(),
            "unrecognized arguments: --bogus"
        );
        assert_eq!(
            spec.apply(&words("--size=1")).unwrap_err(),
            "the following arguments are required: mntpoint"
        );
        assert!(
            spec.apply(&words("/ --size"))
                .unwrap_err()
                .contains("expected one argument")
        );
        assert!(
            spec.apply(&words("/ --pbkdf-"))
                .unwrap_err()
                .starts_with("ambiguous option")
        );
        assert!(
            spec.apply(&words("/ --grow=yes"))
                .unwrap_err()
                .contains("ignored explicit")
        );
        let boot = Spec::parse(&spec_notation(Version::rhel(9), "bootloader").unwrap());
        assert_eq!(
            boot.apply(&words("--location=foo")).unwrap_err(),
            "argument --location: invalid choice: 'foo' (choose from 'mbr', 'partition', 'none', 'boot')"
        );
        let user = Spec::parse(&spec_notation(Version::rhel(9), "user").unwrap());
        assert_eq!(
            user.apply(&words("--groups=wheel")).unwrap_err(),
            "the following arguments are required: --name"
        );
        let repo = Spec::parse(&spec_notation(Version::rhel(9), "repo").unwrap());
        let parsed = repo
            .apply(&words("--name=x --baseurl=u --ignoregroups=true"))
            .unwrap();
        assert_eq!(parsed.deprecated, ["--ignoregroups"]);
    }
}

//! Traps pykickstart is silent about: what the parser noticed, and plaintext passwords.

use super::Checker;
use crate::kickstart::parser::Kickstart;
use crate::kickstart::{Origin, Rule};

impl Checker {
    pub(super) fn traps(&mut self, _ks: &Kickstart) {
        let plaintext: Vec<Origin> = self
            .parsed
            .iter()
            .filter(|(c, p)| match c.name.as_str() {
                "rootpw" => !p.positionals.is_empty() && !p.has("--iscrypted"),
                "user" => p.has("--password") && !p.has("--iscrypted"),
                _ => false,
            })
            .map(|(c, _)| c.origin.clone())
            .collect();
        for origin in plaintext {
            self.warn(
                &origin,
                Rule::PlaintextPassword,
                "a plaintext password: anyone who reads the kickstart (or the image's \
                 anaconda-ks.cfg) has it; give a crypt hash with --iscrypted, or --lock"
                    .to_owned(),
            );
        }
    }
}

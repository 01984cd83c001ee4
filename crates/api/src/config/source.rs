//! Where the settings come from: clap reads the flags and the environment; tests (and
//! anything else that builds a server in-process) hand over a map instead. Either way a
//! blank value counts as unset, as an empty `ROTOR_LICENSE:` in a compose file means.

use super::{parse, Config, ConfigError};
use clap::{Args, FromArgMatches};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

fn blank(value: &OsStr) -> bool {
    value.to_str().is_some_and(|v| v.trim().is_empty())
}

impl Config {
    /// The settings as a command of their own, reading the process environment.
    pub fn command() -> clap::Command {
        Self::augment_args(clap::Command::new("serve").no_binary_name(true))
    }

    /// Reads and checks every setting from `vars` (variable name → value) alone, not from
    /// the process environment. Blank values count as unset.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let declared = Self::command();
        let argv: Vec<String> = declared
            .get_arguments()
            .filter_map(|arg| {
                let var = arg.get_env()?.to_str()?;
                let value = vars.get(var).filter(|v| !v.trim().is_empty())?;
                Some(format!("--{}={value}", arg.get_long()?))
            })
            .collect();
        let matches = Self::command()
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(argv)
            .and_then(|m| Self::from_arg_matches(&m))
            .map_err(|e| {
                parse::value_error(&declared, &e).unwrap_or_else(|| {
                    let text = e.to_string();
                    ConfigError(text.lines().next().unwrap_or_default().to_owned())
                })
            })?;
        matches.finish()
    }
}

/// Makes clap skip every variable of `cmd` (and its subcommands) whose value is blank.
pub fn unset_blank_env(cmd: clap::Command) -> clap::Command {
    unset_blank(cmd, &|name| std::env::var_os(name))
}

fn unset_blank(cmd: clap::Command, lookup: &dyn Fn(&OsStr) -> Option<OsString>) -> clap::Command {
    let cmd = cmd.mut_args(|arg| {
        let is_blank = arg.get_env().and_then(lookup).is_some_and(|v| blank(&v));
        if is_blank {
            arg.env(None)
        } else {
            arg
        }
    });
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    names.into_iter().fold(cmd, |cmd, name| {
        cmd.mut_subcommand(name, |sub| unset_blank(sub, lookup))
    })
}

/// Drops the settings flags given a blank value (`--license ""`, `--license=`) from `argv`.
pub fn drop_blank_flags(argv: Vec<OsString>) -> Vec<OsString> {
    let cmd = Config::command();
    let longs: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| Some(format!("--{}", a.get_long()?)))
        .collect();
    let is_setting = |flag: &str| longs.iter().any(|l| l == flag);
    let mut out = Vec::with_capacity(argv.len());
    let mut args = argv.into_iter().peekable();
    while let Some(arg) = args.next() {
        let text = arg.to_str().unwrap_or_default();
        if let Some((flag, value)) = text.split_once('=') {
            if is_setting(flag) && value.trim().is_empty() {
                continue;
            }
        } else if is_setting(text) && args.peek().is_some_and(|next| blank(next)) {
            args.next();
            continue;
        }
        out.push(arg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_variables_are_not_read_in_any_subcommand() {
        let arg = |id: &'static str, var: &'static str| clap::Arg::new(id).long(id).env(var);
        let cmd = clap::Command::new("rotor")
            .arg(arg("top", "TOP"))
            .subcommand(
                clap::Command::new("keys").subcommand(
                    clap::Command::new("rewrap")
                        .arg(arg("blank", "BLANK"))
                        .arg(arg("set", "SET")),
                ),
            );
        let lookup = |name: &OsStr| match name.to_str() {
            Some("BLANK" | "TOP") => Some(OsString::from(" \t")),
            Some("SET") => Some(OsString::from("x")),
            _ => None,
        };
        let cmd = unset_blank(cmd, &lookup);
        let env = |cmd: &clap::Command, id: &str| {
            cmd.get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_env().map(ToOwned::to_owned))
        };
        assert_eq!(env(&cmd, "top"), None);
        let rewrap = cmd
            .find_subcommand("keys")
            .and_then(|k| k.find_subcommand("rewrap"))
            .unwrap();
        assert_eq!(env(rewrap, "blank"), None);
        assert_eq!(env(rewrap, "set"), Some(OsString::from("SET")));
    }
}

//! The README's configuration table is the declarations of [`Config`] rendered: variable,
//! default (the clap default, else the doc's `Default: …` paragraph) and meaning (the help).

use super::Config;

const START: &str =
    "<!-- configuration table: generated from crates/api/src/config (see its table test) -->";
const END: &str = "<!-- end of configuration table -->";

fn default(arg: &clap::Arg) -> String {
    match arg.get_default_values() {
        [value] if !value.is_empty() => format!("`{}`", value.to_string_lossy()),
        _ => arg
            .get_long_help()
            .map(ToString::to_string)
            .and_then(|long| {
                long.split("\n\n")
                    .find_map(|p| p.strip_prefix("Default: "))
                    .map(|d| d.trim_end_matches('.').to_owned())
            })
            .unwrap_or_else(|| "—".to_owned()),
    }
}

fn meaning(arg: &clap::Arg) -> String {
    // clap drops the summary's final period; the table keeps sentences whole.
    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
    if help.ends_with('.') {
        help
    } else {
        help + "."
    }
}

/// The table in Markdown, one row per setting in declaration order.
fn markdown() -> String {
    let mut out = String::from("| Variable | Default | Meaning |\n|---|---|---|\n");
    for arg in Config::command().get_arguments() {
        if let Some(var) = arg.get_env() {
            let var = var.to_string_lossy();
            out += &format!("| `{var}` | {} | {} |\n", default(arg), meaning(arg));
        }
    }
    out
}

#[test]
fn the_readme_table_is_the_declarations() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let table = readme
        .split_once(START)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(table, _)| table.trim_start_matches('\n'))
        .expect("README.md marks its configuration table");
    let expected = markdown();
    assert!(
        table == expected,
        "README.md's configuration table differs from the declarations in crates/api/src/config; \
         put this between the markers:\n{expected}"
    );
}

#[test]
fn every_setting_has_a_variable_a_flag_and_a_sentence() {
    let cmd = Config::command();
    let args: Vec<_> = cmd.get_arguments().collect();
    assert!(args.len() >= 20, "{}", args.len());
    for arg in args {
        assert!(arg.get_env().is_some() && arg.get_long().is_some(), "{arg}");
        assert!(meaning(arg).len() > 8, "{arg} has no doc comment");
        assert!(!meaning(arg).contains('|'), "{arg}: a | breaks the table");
    }
}

//! Completion of a partial command line in cobra's `__complete` protocol, which kubectl speaks
//! to plugins: kubectl runs `kubectl_complete-velero_debug WORDS...` (the last word is the one
//! being typed, maybe empty) and reads one candidate per line (`value\tdescription`), then
//! `:DIRECTIVE`. Flags and subcommands come from the clap definitions; bundle, restore and
//! backup names from the cluster.
//!
//! Written here, not with clap_complete's dynamic engine: that one speaks its own environment
//! protocol to shells, not cobra's to kubectl.

use clap::{Arg, Command, CommandFactory};

use crate::args::Cli;

/// cobra's ShellCompDirective values.
pub(crate) const DIRECTIVE_DEFAULT: u8 = 0;
pub(crate) const DIRECTIVE_NO_FILES: u8 = 4;

/// What the word being typed should become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// Fixed candidates with descriptions (subcommands, flags, a flag's values).
    Words(Vec<(String, String)>),
    Bundles,
    Restores,
    Backups,
    /// A path: the shell completes files.
    Files,
    Nothing,
}

/// The words being completed, read against the clap definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub wanted: Wanted,
    /// The partial word.
    pub prefix: String,
    /// The global connection flags typed so far (with their values), to reach the cluster
    /// they name.
    pub cluster_words: Vec<String>,
}

/// Commands whose first positional argument is a DebugBundle's name (`delete`: every one).
const BUNDLE_COMMANDS: [&str; 8] = [
    "wait",
    "download",
    "summary",
    "logs",
    "get",
    "describe",
    "refresh-url",
    "delete",
];

pub(crate) fn request(words: &[String]) -> Request {
    let mut root = Cli::command();
    root.build();
    let (prefix, typed) = match words.split_last() {
        Some((last, rest)) => (last.clone(), rest),
        None => (String::new(), &[][..]),
    };
    let mut walk = Walk::new(&root);
    for word in typed {
        walk.step(word);
    }
    let wanted = walk.wanted(&prefix);
    Request {
        wanted,
        prefix,
        cluster_words: walk.cluster_words,
    }
}

/// The state after each typed word: where in the command tree, what the next word is.
struct Walk<'a> {
    path: Vec<&'a Command>,
    positionals: usize,
    value_of: Option<&'a Arg>,
    cluster_words: Vec<String>,
}

impl<'a> Walk<'a> {
    fn new(root: &'a Command) -> Self {
        Walk {
            path: vec![root],
            positionals: 0,
            value_of: None,
            cluster_words: Vec::new(),
        }
    }

    fn command(&self) -> &'a Command {
        self.path.last().expect("the root is always there")
    }

    fn step(&mut self, word: &str) {
        if let Some(arg) = self.value_of.take() {
            if arg.is_global_set() {
                self.cluster_words.push(word.to_string());
            }
            return;
        }
        if let Some(long) = word.strip_prefix("--").filter(|l| !l.is_empty()) {
            let (name, inline) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            self.flag(word, self.find(|a| a.get_long() == Some(name)), inline);
        } else if let Some(short) = word.strip_prefix('-').and_then(|s| s.chars().next()) {
            let inline = word.chars().count() > 2;
            self.flag(word, self.find(|a| a.get_short() == Some(short)), inline);
        } else if let Some(sub) = self
            .command()
            .get_subcommands()
            .find(|c| c.get_name() == word && self.positionals == 0)
        {
            self.path.push(sub);
        } else {
            self.positionals += 1;
        }
    }

    fn flag(&mut self, word: &str, arg: Option<&'a Arg>, inline: bool) {
        let Some(arg) = arg else { return };
        if arg.is_global_set() {
            self.cluster_words.push(word.to_string());
        }
        if !inline && takes_value(arg) {
            self.value_of = Some(arg);
        }
    }

    fn find(&self, matches: impl Fn(&Arg) -> bool) -> Option<&'a Arg> {
        self.command().get_arguments().find(|a| matches(a))
    }

    fn wanted(&self, prefix: &str) -> Wanted {
        if let Some(arg) = self.value_of {
            return values_of(arg);
        }
        let command = self.command();
        if prefix.starts_with('-') {
            return Wanted::Words(flags_of(command));
        }
        if command.has_subcommands() && self.positionals == 0 {
            return Wanted::Words(
                command
                    .get_subcommands()
                    .filter(|c| !c.is_hide_set())
                    .map(|c| (c.get_name().to_string(), about(c.get_about())))
                    .collect(),
            );
        }
        let names: Vec<&str> = self.path.iter().skip(1).map(|c| c.get_name()).collect();
        match (names.as_slice(), self.positionals) {
            (["create", "restore"], 0) => Wanted::Restores,
            (["create", "backup"], 0) => Wanted::Backups,
            (["delete"], _) => Wanted::Bundles,
            ([one], 0) if BUNDLE_COMMANDS.contains(one) => Wanted::Bundles,
            _ => command
                .get_positionals()
                .nth(self.positionals)
                .map(values_of)
                .unwrap_or(Wanted::Nothing),
        }
    }
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.min_values() > 0)
}

fn values_of(arg: &Arg) -> Wanted {
    let values = arg.get_possible_values();
    if !values.is_empty() {
        return Wanted::Words(
            values
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| (v.get_name().to_string(), about(v.get_help())))
                .collect(),
        );
    }
    let path_parser = clap::builder::ValueParser::path_buf().type_id();
    if arg.get_value_parser().type_id() == path_parser {
        Wanted::Files
    } else {
        Wanted::Nothing
    }
}

fn flags_of(command: &Command) -> Vec<(String, String)> {
    command
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
        .filter_map(|a| Some((format!("--{}", a.get_long()?), about(a.get_help()))))
        .collect()
}

fn about(text: Option<&clap::builder::StyledStr>) -> String {
    let text = text.map(|t| t.to_string()).unwrap_or_default();
    // cobra shows the first sentence.
    text.split(". ")
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_string()
}

/// The lines kubectl reads: candidates starting with the prefix, then the directive.
pub(crate) fn answer(candidates: &[(String, String)], prefix: &str, directive: u8) -> String {
    let mut out = String::new();
    for (value, help) in candidates.iter().filter(|(v, _)| v.starts_with(prefix)) {
        // A name from the cluster never breaks the protocol's lines.
        if value.contains(['\n', '\t', '\r']) {
            continue;
        }
        out.push_str(value);
        if !help.is_empty() {
            out.push('\t');
            out.push_str(&help.replace(['\n', '\t'], " "));
        }
        out.push('\n');
    }
    out.push_str(&format!(":{directive}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(words: &[&str]) -> Request {
        request(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
    }

    fn names(wanted: &Wanted) -> Vec<String> {
        match wanted {
            Wanted::Words(words) => words.iter().map(|(w, _)| w.clone()).collect(),
            other => panic!("not words: {other:?}"),
        }
    }

    #[test]
    fn subcommands_then_names_by_command() {
        let top = names(&req(&[""]).wanted);
        assert!(top.contains(&"describe".to_string()), "{top:?}");
        assert!(!top.iter().any(|w| w.starts_with("__")), "{top:?}");
        assert_eq!(
            names(&req(&["create", ""]).wanted),
            ["restore", "backup", "help"]
        );
        assert_eq!(req(&["create", "restore", "r"]).wanted, Wanted::Restores);
        assert_eq!(req(&["create", "backup", ""]).wanted, Wanted::Backups);
        assert_eq!(req(&["describe", ""]).wanted, Wanted::Bundles);
        assert_eq!(req(&["delete", "a", "b", ""]).wanted, Wanted::Bundles);
        assert_eq!(req(&["describe", "a", ""]).wanted, Wanted::Nothing);
        assert_eq!(req(&["-n", "velero", "wait", "w"]).prefix, "w");
    }

    #[test]
    fn flags_values_and_the_cluster_flags_typed() {
        let flags = names(&req(&["create", "restore", "--"]).wanted);
        assert!(flags.contains(&"--latest-failed".to_string()), "{flags:?}");
        assert!(flags.contains(&"--namespace".to_string()), "{flags:?}");
        assert_eq!(
            names(&req(&["create", "restore", "--node-agent-logs", ""]).wanted),
            ["involved", "all", "none"]
        );
        assert_eq!(req(&["--kubeconfig", ""]).wanted, Wanted::Files);
        let r = req(&["--context", "c1", "-n", "team", "get", "--no-headers", ""]);
        assert_eq!(r.wanted, Wanted::Bundles);
        assert_eq!(r.cluster_words, ["--context", "c1", "-n", "team"]);
        let r = req(&["--namespace=team", "logs", ""]);
        assert_eq!(r.cluster_words, ["--namespace=team"]);
        assert_eq!(names(&req(&["completion", ""]).wanted)[0], "bash");
    }

    #[test]
    fn the_answer_filters_by_prefix_and_drops_broken_names() {
        let candidates = vec![
            ("why-1".to_string(), String::new()),
            ("why-2".to_string(), "the second".to_string()),
            ("what\nnot".to_string(), String::new()),
            ("other".to_string(), String::new()),
        ];
        assert_eq!(
            answer(&candidates, "w", DIRECTIVE_NO_FILES),
            "why-1\nwhy-2\tthe second\n:4\n"
        );
    }
}

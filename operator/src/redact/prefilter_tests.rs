//! Proof that the prefilter never turns away text a trigger matches: for each rule, the
//! trigger's DFA and its needles' DFA are walked together over every ASCII text (text that
//! is not all ASCII always goes on to the precheck), looking for one the trigger matches
//! and that holds no needle. The walk visits each pair of states once, so it ends.

use super::rules::{RULES, RuleSpec};
use regex_automata::{
    Anchored,
    dfa::{Automaton, StartKind, dense},
    nfa::thompson,
    util::{primitives::StateID, start, syntax},
};
use std::collections::{HashSet, VecDeque};

/// A DFA over bytes for an unanchored search, with ASCII rules for case and classes: on
/// ASCII text they agree with the precheck's Unicode ones.
fn ascii_dfa(pattern: &str) -> dense::DFA<Vec<u32>> {
    dense::Builder::new()
        .configure(dense::Config::new().start_kind(StartKind::Unanchored))
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .thompson(thompson::Config::new().utf8(false))
        .build(pattern)
        .unwrap_or_else(|e| panic!("{pattern:?} builds a DFA: {e}"))
}

fn start(dfa: &dense::DFA<Vec<u32>>) -> StateID {
    dfa.start_state(&start::Config::new().anchored(Anchored::No))
        .expect("an unanchored start state")
}

/// A text `trigger` (as the precheck has it: case-insensitive) matches that holds none of
/// `needles`, ASCII case folded; None when there is none.
fn text_past_the_needles(trigger: &str, needles: &[&str]) -> Option<Vec<u8>> {
    let matches = ascii_dfa(&format!("(?i:{trigger})"));
    let escaped: Vec<String> = needles.iter().map(|n| regex::escape(n)).collect();
    let holds = ascii_dfa(&format!("(?i:{})", escaped.join("|")));
    let first = (start(&matches), start(&holds));
    let mut seen = HashSet::from([first]);
    let mut queue = VecDeque::from([(first, Vec::new())]);
    while let Some(((m, h), text)) = queue.pop_front() {
        // The text ending here. A DFA reports a match one byte late, or at the end.
        if matches.is_match_state(matches.next_eoi_state(m))
            && !holds.is_match_state(holds.next_eoi_state(h))
        {
            return Some(text);
        }
        for byte in 0..=127u8 {
            let (m, h) = (matches.next_state(m, byte), holds.next_state(h, byte));
            // A needle ended before this byte: every text going on from here holds it.
            if holds.is_match_state(h) {
                continue;
            }
            let mut longer = text.clone();
            longer.push(byte);
            // The trigger matched, ending before this byte (which its look-around saw).
            if matches.is_match_state(m) {
                if !holds.is_match_state(holds.next_eoi_state(h)) {
                    return Some(longer);
                }
                continue;
            }
            if !matches.is_dead_state(m) && seen.insert((m, h)) {
                queue.push_back(((m, h), longer));
            }
        }
    }
    None
}

fn check(rule: &RuleSpec) -> Result<(), String> {
    match text_past_the_needles(rule.trigger, rule.needles) {
        None => Ok(()),
        Some(text) => Err(format!(
            "rule {}: its trigger matches {:?}, which holds none of its needles {:?}",
            rule.name,
            String::from_utf8_lossy(&text),
            rule.needles
        )),
    }
}

#[test]
fn every_text_a_trigger_matches_holds_one_of_its_needles() {
    let failures: Vec<String> = RULES.iter().filter_map(|rule| check(rule).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_walk_finds_a_text_that_slips_past_too_few_needles() {
    // Without "token=" the presigned-URL rule's `security-token=` slips past.
    let needles = ["signature=", "credential=", "keyid=", "googleaccessid="];
    let text = text_past_the_needles(
        r"signature=|credential=|security-token=|(?:aws|oss)accesskeyid=|googleaccessid=",
        &needles,
    )
    .expect("a text the trigger matches without a needle");
    let text = String::from_utf8(text).expect("ASCII");
    assert!(
        text.to_ascii_lowercase().ends_with("security-token="),
        "{text:?}"
    );
    // A needle that is only part of what the trigger needs, in either case, suffices.
    assert_eq!(
        text_past_the_needles("(?-i:AKIA)[A-Z0-9]{16}", &["akia"]),
        None
    );
    // Look-around at the match's end is seen: `\b` after the word needs the next byte.
    assert_eq!(text_past_the_needles(r"curl(?-u:\b)", &["curl"]), None);
    assert!(text_past_the_needles(r"curl(?-u:\b)", &["curls"]).is_some());
}

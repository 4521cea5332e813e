//! The prefilter's tests: what it passes and what it turns away, and the proof that it never
//! turns away text a trigger matches: for each rule, the trigger's DFA and its needles' DFA are
//! walked together over every ASCII text (text that is not all ASCII always goes on to the
//! precheck), looking for one the trigger matches and that holds no needle. The walk visits
//! each pair of states once, so it ends.

use super::super::rules::{RULES, RuleSpec};
use super::*;
use regex_automata::{
    Anchored,
    dfa::{Automaton, StartKind, dense},
    nfa::thompson,
    util::{primitives::StateID, start, syntax},
};
use std::collections::{HashSet, VecDeque};

fn prefilter() -> Prefilter {
    Prefilter::new(["token", "last-applied-configuration", "@", "key"])
}

#[test]
fn a_needle_in_any_case_passes_and_a_plain_line_does_not() {
    let p = prefilter();
    assert!(p.may_match("msg=\"TOKEN refreshed\""));
    assert!(p.may_match("a KeY"));
    assert!(p.may_match("user@host"));
    assert!(!p.may_match("level=info msg=\"Processing item\" backup=velero/nightly-1"));
    assert!(!p.may_match(""));
}

#[test]
fn a_needle_across_a_window_boundary_is_found() {
    let p = prefilter();
    let needle = "last-applied-configuration";
    // Every cut of the needle by the first three windows' ends (the longest needle sets
    // how far each window reaches back).
    let step = WINDOW - (needle.len() - 1);
    for at in [WINDOW, WINDOW + step, WINDOW + 2 * step] {
        for shift in 0..needle.len() {
            let text = format!("{}{needle}{}", "x".repeat(at - shift), "y".repeat(40));
            assert!(
                p.may_match(&text),
                "needle at {} of {}",
                at - shift,
                text.len()
            );
        }
    }
    assert!(!p.may_match(&"x".repeat(5 * WINDOW + 7)));
}

#[test]
fn the_first_candidate_of_a_block_is_in_the_first_line_may_match_passes() {
    let p = prefilter();
    let lines = [
        "level=info msg=plain\n",
        "level=info msg=\"a TOKEN here\"\n",
        "mail user@host\n",
        "caf\u{e9}\n",
        "last-applied-configuration\n",
        "nothing at all\n",
    ];
    let mut lower = Vec::new();
    // Every block of consecutive lines: its first candidate is in the first line
    // `may_match` passes, or there is none when it passes none.
    for from in 0..lines.len() {
        for to in from + 1..=lines.len() {
            let block = lines[from..to].concat();
            let expected = lines[from..to].iter().position(|l| p.may_match(l));
            let found = p
                .first_candidate(block.as_bytes(), &mut lower)
                .map(|at| block[..at].matches('\n').count());
            assert_eq!(found, expected, "{block:?}");
        }
    }
    // A needle cut by a window's end, and one past many windows.
    let plain = "x".repeat(99) + "\n";
    let needle = "last-applied-configuration";
    for shift in 0..needle.len() {
        let head = plain.repeat(BLOCK_WINDOW / plain.len() + 1);
        let cut = BLOCK_WINDOW - shift;
        let block = format!("{}{needle}\n{}", &head[..cut], plain.repeat(100));
        assert_eq!(p.first_candidate(block.as_bytes(), &mut lower), Some(cut));
    }
    let block = plain.repeat(1000);
    assert_eq!(p.first_candidate(block.as_bytes(), &mut lower), None);
}

#[test]
fn text_that_is_not_all_ascii_always_goes_on_to_the_precheck() {
    let p = prefilter();
    // KELVIN SIGN + "ey": the precheck's Unicode case folding reads it as "key".
    assert!(p.may_match("a \u{212A}ey=x"));
    assert!(p.may_match("caf\u{e9} au lait"));
}

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

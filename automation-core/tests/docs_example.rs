//! The rules-file example in the crate docs and the example files compile.
#![allow(clippy::unwrap_used)]

use automation_core::{RuleSet, RulesFile};

fn doc_toml_block() -> String {
    let lib = include_str!("../src/lib.rs");
    let mut out = String::new();
    let mut inside = false;
    for line in lib.lines() {
        let line = line
            .strip_prefix("//!")
            .map(|l| l.strip_prefix(' ').unwrap_or(l));
        let Some(line) = line else { continue };
        if line.trim() == "```toml" {
            inside = true;
            continue;
        }
        if inside && line.trim() == "```" {
            break;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn the_documented_rules_file_is_valid() {
    let text = doc_toml_block();
    assert!(text.contains("[[rules]]"));
    let file = RulesFile::from_toml(&text).unwrap();
    assert_eq!(file.rules.len(), 4);
    assert_eq!(file.flows.len(), 1);
    assert!(
        RuleSet::check(&file).is_empty(),
        "{:?}",
        RuleSet::check(&file)
    );
}

#[test]
fn the_example_files_are_valid_and_equivalent() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let toml = RulesFile::from_toml(&std::fs::read_to_string(format!("{dir}/rules.toml")).unwrap())
        .unwrap();
    let json = RulesFile::from_json(&std::fs::read_to_string(format!("{dir}/rules.json")).unwrap())
        .unwrap();
    assert_eq!(toml, json);
    let set = RuleSet::from_file(toml).unwrap();
    assert!(set.len() >= 5);
}

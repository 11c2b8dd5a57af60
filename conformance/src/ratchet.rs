//! The ratchet: `passing.txt` may only grow, `uncovered.txt` may only shrink.

use std::collections::BTreeSet;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Violation {
    /// Listed in passing.txt, does not pass now.
    Regressed(String),
    /// No specific case, not listed in uncovered.txt.
    NewlyUncovered(String),
}

/// Pure: what the current run breaks, given the recorded lists.
pub fn violations(
    recorded_passing: &BTreeSet<String>,
    recorded_uncovered: &BTreeSet<String>,
    passing_now: &BTreeSet<String>,
    uncovered_now: &BTreeSet<String>,
) -> Vec<Violation> {
    let mut v: Vec<Violation> = recorded_passing
        .difference(passing_now)
        .map(|op| Violation::Regressed(op.clone()))
        .collect();
    v.extend(
        uncovered_now
            .difference(recorded_uncovered)
            .map(|op| Violation::NewlyUncovered(op.clone())),
    );
    v
}

/// Recorded entries that can be dropped (informational, not a failure).
pub fn stale_uncovered(
    recorded: &BTreeSet<String>,
    uncovered_now: &BTreeSet<String>,
) -> Vec<String> {
    recorded.difference(uncovered_now).cloned().collect()
}

pub fn parse_list(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

pub fn render_list(set: &BTreeSet<String>) -> String {
    set.iter().map(|s| format!("{s}\n")).collect()
}

/// Reads a list; a missing file is an empty list (`Ok(None)`).
pub fn read_list(path: &Path) -> Result<Option<BTreeSet<String>>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(parse_list(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

pub fn write_list(path: &Path, set: &BTreeSet<String>) -> Result<(), String> {
    std::fs::write(path, render_list(set)).map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn steady_state_has_no_violations() {
        let v = violations(
            &set(&["a", "b"]),
            &set(&["c", "d"]),
            &set(&["a", "b"]),
            &set(&["c", "d"]),
        );
        assert!(v.is_empty());
    }

    #[test]
    fn progress_is_allowed() {
        // c became covered and passing: lists are stale but nothing breaks.
        let v = violations(
            &set(&["a"]),
            &set(&["c", "d"]),
            &set(&["a", "c"]),
            &set(&["d"]),
        );
        assert!(v.is_empty());
        assert_eq!(
            stale_uncovered(&set(&["c", "d"]), &set(&["d"])),
            vec!["c".to_string()]
        );
    }

    #[test]
    fn regressions_and_new_uncovered_ops_break_the_ratchet() {
        let v = violations(
            &set(&["a", "b"]),
            &set(&["c"]),
            &set(&["a"]),
            &set(&["c", "e"]),
        );
        assert_eq!(
            v,
            vec![
                Violation::Regressed("b".into()),
                Violation::NewlyUncovered("e".into())
            ]
        );
    }

    #[test]
    fn failing_ops_not_recorded_as_passing_are_fine() {
        let v = violations(&set(&[]), &set(&["x"]), &set(&[]), &set(&["x"]));
        assert!(v.is_empty());
    }

    #[test]
    fn lists_round_trip_sorted() {
        let s = parse_list("b\n\n# comment\na\n  c  \n");
        assert_eq!(s, set(&["a", "b", "c"]));
        assert_eq!(render_list(&s), "a\nb\nc\n");
    }
}

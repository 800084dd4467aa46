//! The guest's report: one entry per check, written as JSON to the result share and read
//! back by the host, which prints it and decides the exit code.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The check ran and our code gave the right answer.
    Pass,
    /// The check ran and something was wrong (or it could not run at all).
    Fail,
    /// The device lacks the feature, and our code said so cleanly (typed "unsupported"
    /// answer, no hang, no panic). Counts as success.
    Unsupported,
    /// The device (tgt) answered wrongly in one precise way the check recognises, while
    /// the check's control measurement of our code passed: a known emulator bug, named
    /// in the detail. Counts as success for our code; listed separately.
    DeviceDefect,
    /// Not run, because a check it depends on failed (that one carries the failure).
    Skipped,
}

/// One check of the guest test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// Short stable name, e.g. `devices.mapping`.
    pub name: String,
    /// The verdict.
    pub outcome: Outcome,
    /// One or a few lines: what was compared and what differed.
    pub detail: String,
    /// Cross-check evidence: the commands run and their output (mtx, mt, our CLI).
    pub evidence: String,
    /// Wall time the check took, in seconds.
    pub seconds: f64,
}

/// Everything the guest reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// Named phases and their wall time in seconds (library setup, checks, ...).
    pub timings: Vec<(String, f64)>,
    /// The guest kernel's `uname -r`.
    pub kernel: String,
    /// Set when the guest program stopped early (setup failed): the reason.
    pub aborted: Option<String>,
}

impl Report {
    /// True when no check failed and the run was not aborted.
    pub fn passed(&self) -> bool {
        self.aborted.is_none() && self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }

    /// Number of checks with the given outcome.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|c| c.outcome == outcome).count()
    }

    /// Human-readable rendering: a summary table first, then each check's evidence.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "vm-smoke report (guest kernel {})", self.kernel);
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(10);
        for c in &self.checks {
            let tag = match c.outcome {
                Outcome::Pass => "PASS",
                Outcome::Fail => "FAIL",
                Outcome::Unsupported => "UNSUPPORTED",
                Outcome::DeviceDefect => "DEVICE-BUG",
                Outcome::Skipped => "SKIPPED",
            };
            let _ = writeln!(
                s,
                "  {tag:<11} {:<width$} {:>6.2}s  {}",
                c.name,
                c.seconds,
                first_line(&c.detail)
            );
        }
        if let Some(why) = &self.aborted {
            let _ = writeln!(s, "  ABORTED: {why}");
        }
        let _ = writeln!(
            s,
            "{} passed, {} failed, {} unsupported, {} device bugs, {} skipped",
            self.count(Outcome::Pass),
            self.count(Outcome::Fail),
            self.count(Outcome::Unsupported),
            self.count(Outcome::DeviceDefect),
            self.count(Outcome::Skipped)
        );
        if !self.timings.is_empty() {
            let _ = write!(s, "guest timings:");
            for (name, secs) in &self.timings {
                let _ = write!(s, " {name} {secs:.2}s;");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "\n--- evidence ---");
        for c in &self.checks {
            let _ = writeln!(s, "\n### {} [{:?}]", c.name, c.outcome);
            if c.detail.lines().count() > 1 {
                let _ = writeln!(s, "{}", c.detail.trim_end());
            }
            if !c.evidence.trim().is_empty() {
                let _ = writeln!(s, "{}", c.evidence.trim_end());
            }
        }
        s
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, outcome: Outcome) -> Check {
        Check {
            name: name.into(),
            outcome,
            detail: "d".into(),
            evidence: "e".into(),
            seconds: 0.0,
        }
    }

    #[test]
    fn unsupported_is_not_a_failure_but_fail_and_abort_are() {
        let mut r = Report::default();
        r.checks.push(check("a", Outcome::Pass));
        r.checks.push(check("b", Outcome::Unsupported));
        r.checks.push(check("d", Outcome::DeviceDefect));
        assert!(r.passed());
        r.checks.push(check("c", Outcome::Fail));
        assert!(!r.passed());
        let mut r2 = Report {
            aborted: Some("setup".into()),
            ..Report::default()
        };
        assert!(!r2.passed());
        r2.aborted = None;
        assert!(r2.passed());
    }

    #[test]
    fn json_round_trip_and_render() {
        let mut r = Report::default();
        r.checks.push(check("mtx.status", Outcome::Pass));
        r.checks.push(check("drive.mam", Outcome::Unsupported));
        r.checks
            .push(check("conformance.space_filemarks", Outcome::DeviceDefect));
        let json = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back.checks.len(), 3);
        assert_eq!(back.checks[2].outcome, Outcome::DeviceDefect);
        let text = back.render();
        assert!(text.contains("PASS"));
        assert!(text.contains("UNSUPPORTED"));
        assert!(text.contains("DEVICE-BUG"));
        assert!(text.contains("1 passed, 0 failed, 1 unsupported, 1 device bugs, 0 skipped"));
    }
}

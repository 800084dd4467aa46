//! A source's `exclude` patterns: the listed paths `get` leaves out.
//!
//! Patterns are globs over the path under the source's root, with the meaning `.gitignore`
//! gives them (docs/CONFIG.md):
//!
//! - `*`, `?` and `[…]` never match `/`; `**` as a whole component matches any number of
//!   directories (`a/**/b` matches `a/b`, `a/x/b`, `a/x/y/b`).
//! - A pattern without `/` (other than a trailing one) matches a file or directory name at
//!   any depth: `*.tmp`, `.cache`, `Thumbs.db`.
//! - A pattern with a `/` inside, or starting with `/`, is anchored at the source's root
//!   and matches a whole path from there: `/build`, `photos/*/raw`.
//! - A pattern ending with `/` matches directories only: `node_modules/`.
//! - A directory that matches excludes everything under it.
//! - A leading `.` is matched by `*` and `?` like any other character.

use anyhow::{Context as _, bail};

/// Compiled `exclude` patterns of one source.
#[derive(Debug, Clone, Default)]
pub struct Exclude {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    pattern: glob::Pattern,
    /// Matched against the whole path from the root, not a single name.
    anchored: bool,
    /// Matches directories only.
    dir_only: bool,
}

const OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Exclude {
    /// Compiles `patterns`; an empty or malformed one is an error naming it.
    pub fn new(patterns: &[String]) -> anyhow::Result<Exclude> {
        let mut rules = Vec::with_capacity(patterns.len());
        for p in patterns {
            let (body, dir_only) = match p.strip_suffix('/') {
                Some(b) => (b, true),
                None => (p.as_str(), false),
            };
            let (body, rooted) = match body.strip_prefix('/') {
                Some(b) => (b, true),
                None => (body, false),
            };
            if body.is_empty() || body.split('/').any(str::is_empty) {
                bail!("exclude pattern {p:?}: empty path component");
            }
            let pattern =
                glob::Pattern::new(body).with_context(|| format!("exclude pattern {p:?}"))?;
            rules.push(Rule {
                pattern,
                anchored: rooted || body.contains('/'),
                dir_only,
            });
        }
        Ok(Exclude { rules })
    }

    /// No patterns: nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the file at `path` (relative to the source's root, `/`-separated) is
    /// excluded: it matches, or a directory above it does.
    pub fn matches(&self, path: &str) -> bool {
        self.matches_entry(path, false)
    }

    /// [`Exclude::matches`] for a file or, with `is_dir`, a directory (whose whole tree is
    /// then excluded).
    pub fn matches_entry(&self, path: &str, is_dir: bool) -> bool {
        if self.rules.is_empty() {
            return false;
        }
        let last_is_dir = is_dir;
        let mut start = 0;
        loop {
            let end = path[start..].find('/').map(|i| start + i);
            let is_dir = end.is_some() || last_is_dir;
            let prefix = &path[..end.unwrap_or(path.len())];
            let name = &prefix[start..];
            for r in &self.rules {
                if r.dir_only && !is_dir {
                    continue;
                }
                let candidate = if r.anchored { prefix } else { name };
                if r.pattern.matches_with(candidate, OPTIONS) {
                    return true;
                }
            }
            match end {
                Some(e) => start = e + 1,
                None => return false,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ex(patterns: &[&str]) -> Exclude {
        Exclude::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn names_match_at_any_depth() {
        let e = ex(&["*.tmp", "Thumbs.db", ".cache"]);
        assert!(e.matches("a.tmp"));
        assert!(e.matches("x/y/.b.tmp"));
        assert!(e.matches("photos/Thumbs.db"));
        assert!(e.matches(".cache/f"));
        assert!(e.matches("home/u/.cache/deep/f"));
        assert!(!e.matches("a.tmpx"));
        assert!(!e.matches("tmp/a.txt"));
        assert!(!e.matches("x.cache/f"));
        assert!(!e.matches("Thumbs.db.bak"));
    }

    #[test]
    fn anchored_patterns_match_from_the_root() {
        let e = ex(&["/build", "photos/*/raw", "docs/**/draft.txt"]);
        assert!(e.matches("build"));
        assert!(e.matches("build/out.o"));
        assert!(!e.matches("src/build/out.o"));
        assert!(e.matches("photos/2024/raw/img.cr2"));
        assert!(!e.matches("photos/2024/x/raw/img.cr2"));
        assert!(!e.matches("old/photos/2024/raw/img.cr2"));
        assert!(e.matches("docs/draft.txt"));
        assert!(e.matches("docs/a/b/draft.txt"));
        assert!(!e.matches("docs/a/b/final.txt"));
    }

    #[test]
    fn trailing_slash_matches_directories_only() {
        let e = ex(&["node_modules/", "/cache/"]);
        assert!(e.matches("node_modules/x.js"));
        assert!(e.matches("web/node_modules/a/b.js"));
        assert!(!e.matches("node_modules"));
        assert!(!e.matches("web/node_modules"));
        assert!(e.matches("cache/x"));
        assert!(!e.matches("cache"));
        assert!(!e.matches("a/cache/x"));
    }

    #[test]
    fn wildcards_do_not_cross_directories() {
        let e = ex(&["a*b", "/x/*"]);
        assert!(e.matches("aXXb"));
        assert!(!e.matches("a/b"));
        assert!(e.matches("x/file"));
        assert!(
            e.matches("x/dir/file"),
            "x/dir matches /x/*, so all below it"
        );
        assert!(!e.matches("y/x/file"));
    }

    #[test]
    fn directories_themselves_match_as_directories() {
        let e = ex(&["node_modules/", "/build", "*.tmp"]);
        assert!(e.matches_entry("web/node_modules", true));
        assert!(!e.matches_entry("web/node_modules", false));
        assert!(e.matches_entry("build", true));
        assert!(e.matches_entry("x.tmp", true));
        assert!(!e.matches_entry("web", true));
        assert!(
            e.matches_entry("build/sub", true),
            "below an excluded directory"
        );
    }

    #[test]
    fn nothing_excluded_without_patterns() {
        let e = ex(&[]);
        assert!(e.is_empty());
        assert!(!e.matches("anything/at/all"));
    }

    #[test]
    fn bad_patterns_are_refused_by_name() {
        for bad in ["", "/", "a//b", "[z-a", "//"] {
            let err = Exclude::new(&[bad.to_string()]).unwrap_err();
            assert!(
                format!("{err:#}").contains(&format!("{bad:?}")),
                "{bad}: {err:#}"
            );
        }
    }
}

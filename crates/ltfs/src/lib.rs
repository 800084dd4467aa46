//! ltfs — see README.md.

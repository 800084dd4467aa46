//! cryptpack — see README.md. (Being built; see docs/ARCHITECTURE.md.)

//! Integration tests of the catalog, one binary; modules mirror the crate's concerns.

mod api;
mod batch;
mod crash;
mod forget;
mod legacy;
mod model;
mod named;
mod snapshot;
mod support;

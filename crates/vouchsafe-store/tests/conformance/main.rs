//! The store's conformance suite: every behavioural test of the `Store` contract, run against every backend
//! (see `support`). Tests of one backend's own mechanics (SQLite's spool, file modes and migrations) are in
//! `tests/sqlite.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code: a failure is the test failing

mod support;

mod after_threshold;
mod claims;
mod inbox;

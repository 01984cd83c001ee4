//! Integration tests of rotor-dispatch (one binary; each module is a concern).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod netns;
mod redis_state;

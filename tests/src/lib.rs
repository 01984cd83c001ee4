//! End-to-end tests for Rotor live in `it/`; this library is intentionally empty.

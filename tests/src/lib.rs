//! esteira tests.

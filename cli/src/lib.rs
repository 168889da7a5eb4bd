//! esteira cli.

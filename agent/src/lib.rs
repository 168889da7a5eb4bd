//! esteira agent.

//! The gateway data plane: reads on tenant databases built from a closed
//! set of operators, with every identifier resolved against the tenant's
//! schema cache and quoted, and every value a bind parameter.

pub mod filter;
pub mod read;

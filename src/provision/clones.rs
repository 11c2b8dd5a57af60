//! Clone jobs (issue 21): filled in below.

/// The clone-job service.
#[derive(Default)]
pub struct Clones {}

//! Streams of managed files: `PUT …/upload` (the request body to S3 in
//! `PART_SIZE` parts, never the whole body in memory) and `proxy` (the
//! object's bytes from S3 to the caller as they arrive, with `Range`).

use super::*;

/// The part size of a streamed upload (and the size under which a body is
/// one PutObject): what the SDK uses for its multipart uploads.
pub const PART_SIZE: usize = 8 << 20;

//! `make bench`'s storage baseline: the same S3 work as the gateway's
//! `/storage/objects/url` and `/storage/objects/head`, done directly with
//! rust-s3 by `conns` concurrent tasks for `secs` seconds; prints calls/s.
//!
//! `s3_direct <presign|head> <endpoint> <bucket> <key> <conns> <secs>`
//! (credentials from `S3_ACCESS_KEY_ID`, `S3_SECRET_ACCESS_KEY`).

use s3::creds::Credentials;
use s3::{Bucket, Region};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, endpoint, bucket, key, conns, secs] = args.as_slice() else {
        eprintln!("usage: s3_direct <presign|head> <endpoint> <bucket> <key> <conns> <secs>");
        std::process::exit(2);
    };
    let credentials = Credentials::new(
        std::env::var("S3_ACCESS_KEY_ID").ok().as_deref(),
        std::env::var("S3_SECRET_ACCESS_KEY").ok().as_deref(),
        None,
        None,
        None,
    )
    .expect("credentials");
    let region = Region::Custom {
        region: "us-east-1".into(),
        endpoint: endpoint.clone(),
    };
    let bucket = Arc::new(
        *Bucket::new(bucket, region, credentials)
            .expect("bucket")
            .with_path_style(),
    );
    let conns: usize = conns.parse().expect("conns");
    let deadline = Instant::now() + Duration::from_secs(secs.parse().expect("secs"));
    let done = Arc::new(AtomicU64::new(0));
    let presign = mode == "presign";
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (bucket, key, done) = (bucket.clone(), key.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if presign {
                    bucket.presign_get(&key, 900, None).await.expect("presign");
                } else {
                    bucket.head_object(&key).await.expect("head");
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let secs: f64 = secs.parse().expect("secs");
    println!("{:.0}", done.load(Ordering::Relaxed) as f64 / secs);
}

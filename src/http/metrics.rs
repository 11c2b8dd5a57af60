//! Prometheus text exposition for request metrics. Labels are the route
//! template and operation name, never raw paths, tables or keys.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// OpenTelemetry's default HTTP duration buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    method: &'static str,
    route: &'static str,
    operation: &'static str,
    status: u16,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// A gauge family: name, help text, and `(labels, value)` series.
pub type Gauge<'a> = (&'a str, &'a str, Vec<(String, f64)>);

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<Key, Histogram>>,
}

impl Metrics {
    pub fn observe(
        &self,
        method: &'static str,
        route: &'static str,
        operation: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let secs = elapsed.as_secs_f64();
        let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let h = map
            .entry(Key {
                method,
                route,
                operation,
                status,
            })
            .or_default();
        h.count += 1;
        h.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
    }

    /// `gauges` are extra `(name, help, value)` lines (pool sizes, build info).
    pub fn render(&self, version: &str, gauges: &[Gauge<'_>]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP athena_build_info Build information.\n# TYPE athena_build_info gauge"
        );
        let _ = writeln!(out, "athena_build_info{{version=\"{version}\"}} 1");
        let _ = writeln!(
            out,
            "# HELP athena_http_server_request_duration_seconds Duration of HTTP server requests."
        );
        let _ = writeln!(
            out,
            "# TYPE athena_http_server_request_duration_seconds histogram"
        );
        let map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for (k, h) in map.iter() {
            let labels = format!(
                "method=\"{}\",route=\"{}\",operation=\"{}\",status_code=\"{}\"",
                k.method, k.route, k.operation, k.status
            );
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "athena_http_server_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(
                out,
                "athena_http_server_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "athena_http_server_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "athena_http_server_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        drop(map);
        for (name, help, series) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (labels, value) in series {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_histogram_with_template_labels() {
        let m = Metrics::default();
        m.observe(
            "GET",
            "/rest/v1/{table}",
            "get_rest_v1_by_table",
            200,
            Duration::from_millis(3),
        );
        m.observe(
            "GET",
            "/rest/v1/{table}",
            "get_rest_v1_by_table",
            200,
            Duration::from_millis(30),
        );
        let text = m.render("1.0.0", &[]);
        assert!(text.contains(
            "athena_http_server_request_duration_seconds_count{method=\"GET\",route=\"/rest/v1/{table}\",operation=\"get_rest_v1_by_table\",status_code=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("athena_build_info{version=\"1.0.0\"} 1"));
    }
}

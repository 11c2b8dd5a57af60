//! Fetch post-processing (`group_by`, `time_granularity`,
//! `aggregation_column` + `aggregation_strategy`, `aggregation_dedup`): a
//! summary computed from the rows a fetch returned, answered beside them in
//! `post_processing` so `data` keeps its row shape for every client.
//!
//! It runs over the returned page (after filters, order and paging), which
//! is what "post" means in the contract; a chart over a whole table asks
//! for the rows it needs with `limit`.

use crate::domain::DomainError;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike};
use serde_json::{json, Map, Number, Value};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Hour,
    Minute,
}

impl Granularity {
    fn as_str(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Hour => "hour",
            Granularity::Minute => "minute",
        }
    }
}

/// What a request asked for; `None` fields were not given.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub group_by: Option<String>,
    pub time_granularity: Option<Granularity>,
    pub aggregation_column: Option<String>,
    /// The only strategy the contract names.
    pub cumulative_sum: bool,
    pub dedup: bool,
}

impl Spec {
    /// Whether anything is asked (no summary otherwise).
    pub fn is_empty(&self) -> bool {
        self.group_by.is_none()
            && self.time_granularity.is_none()
            && self.aggregation_column.is_none()
            && !self.cumulative_sum
    }

    /// The combinations the contract forbids, refused before any query runs.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.time_granularity.is_some() && self.group_by.is_none() {
            return Err(DomainError::Invalid(
                "time_granularity needs group_by (the timestamp column to bucket)".into(),
            ));
        }
        if self.cumulative_sum && self.aggregation_column.is_none() {
            return Err(DomainError::Invalid(
                "aggregation_strategy needs aggregation_column".into(),
            ));
        }
        for name in [&self.group_by, &self.aggregation_column]
            .into_iter()
            .flatten()
        {
            if name.trim().is_empty() {
                return Err(DomainError::Invalid(
                    "group_by / aggregation_column must name a column".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The `post_processing` object for these rows.
///
/// With `group_by`: `groups` ordered by key (nulls first), each
/// `{key, count}` plus `sum` (and `cumulative_sum`, the running total over
/// the ordered groups) when an aggregation column is named. Without it, the
/// aggregation runs over the rows in their returned order (`series`).
/// `aggregation_dedup` counts identical rows once.
pub fn summarize(spec: &Spec, rows: &[Map<String, Value>]) -> Result<Value, DomainError> {
    spec.validate()?;
    let mut seen = HashSet::new();
    let rows: Vec<&Map<String, Value>> = rows
        .iter()
        .filter(|r| !spec.dedup || seen.insert(Value::Object((*r).clone()).to_string()))
        .collect();
    let mut out = Map::new();
    out.insert("input_rows".into(), json!(rows.len()));
    out.insert("deduplicated".into(), json!(spec.dedup));
    if let Some(col) = &spec.aggregation_column {
        out.insert("aggregation_column".into(), json!(col));
        if spec.cumulative_sum {
            out.insert("aggregation_strategy".into(), json!("cumulative_sum"));
        }
    }
    match &spec.group_by {
        Some(group_by) => {
            out.insert("group_by".into(), json!(group_by));
            if let Some(g) = spec.time_granularity {
                out.insert("time_granularity".into(), json!(g.as_str()));
            }
            let groups = group(spec, group_by, &rows)?;
            out.insert("groups".into(), Value::Array(groups));
        }
        None => {
            if let Some(col) = &spec.aggregation_column {
                let (series, total) = series(spec, col, &rows)?;
                out.insert("series".into(), Value::Array(series));
                out.insert("total".into(), number(total));
            }
        }
    }
    Ok(Value::Object(out))
}

/// Group keys: nulls first, then booleans, numbers (numeric order),
/// strings, and anything else by its JSON text.
#[derive(Debug, Clone)]
pub(crate) enum Key {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Other(String),
}

impl Key {
    fn rank(&self) -> u8 {
        match self {
            Key::Null => 0,
            Key::Bool(_) => 1,
            Key::Number(_) => 2,
            Key::Text(_) => 3,
            Key::Other(_) => 4,
        }
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Key::Bool(a), Key::Bool(b)) => a.cmp(b),
            (Key::Number(a), Key::Number(b)) => a.total_cmp(b),
            (Key::Text(a), Key::Text(b)) | (Key::Other(a), Key::Other(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Key {}

impl Key {
    pub(crate) fn of(v: &Value) -> Key {
        match v {
            Value::Null => Key::Null,
            Value::Bool(b) => Key::Bool(*b),
            Value::Number(n) => Key::Number(n.as_f64().unwrap_or(0.0)),
            Value::String(s) => Key::Text(s.clone()),
            other => Key::Other(other.to_string()),
        }
    }
}

struct Bucket {
    key: Value,
    count: u64,
    sum: f64,
}

fn group(
    spec: &Spec,
    group_by: &str,
    rows: &[&Map<String, Value>],
) -> Result<Vec<Value>, DomainError> {
    let mut buckets: BTreeMap<Key, Bucket> = BTreeMap::new();
    for row in rows {
        let raw = row.get(group_by).ok_or_else(|| {
            DomainError::Invalid(format!(
                "group_by column `{group_by}` is not among the returned columns"
            ))
        })?;
        let key = match spec.time_granularity {
            Some(g) if !raw.is_null() => bucket_time(raw, g).ok_or_else(|| {
                DomainError::Invalid(format!(
                    "time_granularity needs a date or timestamp in `{group_by}`, got {raw}"
                ))
            })?,
            _ => raw.clone(),
        };
        let add = match &spec.aggregation_column {
            Some(col) => numeric(row, col)?,
            None => 0.0,
        };
        let b = buckets.entry(Key::of(&key)).or_insert(Bucket {
            key,
            count: 0,
            sum: 0.0,
        });
        b.count += 1;
        b.sum += add;
    }
    let mut running = 0.0;
    Ok(buckets
        .into_values()
        .map(|b| {
            let mut g = Map::new();
            g.insert("key".into(), b.key);
            g.insert("count".into(), json!(b.count));
            if spec.aggregation_column.is_some() {
                g.insert("sum".into(), number(b.sum));
                if spec.cumulative_sum {
                    running += b.sum;
                    g.insert("cumulative_sum".into(), number(running));
                }
            }
            Value::Object(g)
        })
        .collect())
}

fn series(
    spec: &Spec,
    col: &str,
    rows: &[&Map<String, Value>],
) -> Result<(Vec<Value>, f64), DomainError> {
    let mut running = 0.0;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let v = numeric(row, col)?;
        running += v;
        let mut point = Map::new();
        point.insert("value".into(), number(v));
        if spec.cumulative_sum {
            point.insert("cumulative_sum".into(), number(running));
        }
        out.push(Value::Object(point));
    }
    Ok((out, running))
}

/// The aggregation column of a row as a number: JSON numbers (numerics come
/// from Postgres as numbers), numeric strings, or null (counted as 0).
fn numeric(row: &Map<String, Value>, col: &str) -> Result<f64, DomainError> {
    match row.get(col) {
        None => Err(DomainError::Invalid(format!(
            "aggregation_column `{col}` is not among the returned columns"
        ))),
        Some(Value::Null) => Ok(0.0),
        Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(0.0)),
        Some(Value::String(s)) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
            Ok(s.trim().parse().unwrap_or(0.0))
        }
        Some(other) => Err(DomainError::Invalid(format!(
            "aggregation_column `{col}` must hold numbers, got {other}"
        ))),
    }
}

/// Integers stay integers in the answer (sums of counts, status codes).
pub(crate) fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// The start of the bucket a date/timestamp falls in, in the same style as
/// Postgres wrote it: offset-bearing timestamps in UTC (`…Z`), plain ones
/// without an offset, dates as midnight.
fn bucket_time(v: &Value, g: Granularity) -> Option<Value> {
    let s = v.as_str()?.trim();
    let truncate = |t: NaiveDateTime| -> Option<NaiveDateTime> {
        match g {
            Granularity::Day => t.date().and_hms_opt(0, 0, 0),
            Granularity::Hour => t.date().and_hms_opt(t.hour(), 0, 0),
            Granularity::Minute => t.date().and_hms_opt(t.hour(), t.minute(), 0),
        }
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        let utc = truncate(t.naive_utc())?;
        return Some(json!(utc.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
    }
    // Postgres' JSON for timestamptz may carry an hour-only offset (`+00`).
    if let Ok(t) = DateTime::parse_from_str(&format!("{s}:00"), "%Y-%m-%dT%H:%M:%S%.f%:z") {
        let utc = truncate(t.naive_utc())?;
        return Some(json!(utc.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(json!(truncate(t)?.format("%Y-%m-%dT%H:%M:%S").to_string()));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(json!(d.format("%Y-%m-%dT00:00:00").to_string()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: Value) -> Vec<Map<String, Value>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_object().unwrap().clone())
            .collect()
    }

    #[test]
    fn groups_by_hour_with_running_total() {
        let data = rows(json!([
            {"at": "2026-11-29T10:15:00+00:00", "n": 2},
            {"at": "2026-11-29T10:59:59.5+00:00", "n": 3},
            {"at": "2026-11-29T12:01:00+01:00", "n": "4.5"},
            {"at": "2026-11-29T09:00:00+00:00", "n": null},
        ]));
        let spec = Spec {
            group_by: Some("at".into()),
            time_granularity: Some(Granularity::Hour),
            aggregation_column: Some("n".into()),
            cumulative_sum: true,
            dedup: false,
        };
        let out = summarize(&spec, &data).unwrap();
        let groups = out["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0]["key"], json!("2026-11-29T09:00:00Z"));
        assert_eq!(groups[1]["key"], json!("2026-11-29T10:00:00Z"));
        assert_eq!(groups[1]["count"], json!(2));
        assert_eq!(groups[1]["sum"], json!(5));
        assert_eq!(groups[1]["cumulative_sum"], json!(5));
        // 12:01+01:00 is 11:01 UTC.
        assert_eq!(groups[2]["key"], json!("2026-11-29T11:00:00Z"));
        assert_eq!(groups[2]["cumulative_sum"], json!(9.5));
    }

    #[test]
    fn dedup_counts_identical_rows_once() {
        let data = rows(json!([{"k": "a", "v": 1}, {"k": "a", "v": 1}, {"k": "b", "v": 2}]));
        let mut spec = Spec {
            group_by: Some("k".into()),
            aggregation_column: Some("v".into()),
            ..Spec::default()
        };
        let plain = summarize(&spec, &data).unwrap();
        assert_eq!(plain["groups"][0]["count"], json!(2));
        spec.dedup = true;
        let deduped = summarize(&spec, &data).unwrap();
        assert_eq!(deduped["groups"][0]["count"], json!(1));
        assert_eq!(deduped["input_rows"], json!(2));
    }

    #[test]
    fn series_without_group_by() {
        let data = rows(json!([{"v": 1}, {"v": 2}, {"v": 3}]));
        let spec = Spec {
            aggregation_column: Some("v".into()),
            cumulative_sum: true,
            ..Spec::default()
        };
        let out = summarize(&spec, &data).unwrap();
        assert_eq!(out["total"], json!(6));
        assert_eq!(out["series"][2]["cumulative_sum"], json!(6));
    }

    #[test]
    fn refuses_what_cannot_be_computed() {
        let data = rows(json!([{"k": "x", "v": "abc"}]));
        let bad = [
            Spec {
                time_granularity: Some(Granularity::Day),
                ..Spec::default()
            },
            Spec {
                cumulative_sum: true,
                ..Spec::default()
            },
            Spec {
                group_by: Some("missing".into()),
                ..Spec::default()
            },
            Spec {
                group_by: Some("k".into()),
                time_granularity: Some(Granularity::Minute),
                ..Spec::default()
            },
            Spec {
                aggregation_column: Some("v".into()),
                ..Spec::default()
            },
        ];
        for spec in bad {
            assert!(
                matches!(summarize(&spec, &data), Err(DomainError::Invalid(_))),
                "{spec:?}"
            );
        }
    }

    #[test]
    fn buckets_dates_and_naive_timestamps() {
        assert_eq!(
            bucket_time(&json!("2026-01-02"), Granularity::Hour),
            Some(json!("2026-01-02T00:00:00"))
        );
        assert_eq!(
            bucket_time(&json!("2026-01-02T03:04:05.678"), Granularity::Minute),
            Some(json!("2026-01-02T03:04:00"))
        );
        assert_eq!(
            bucket_time(&json!("2026-01-02T03:04:05+00"), Granularity::Day),
            Some(json!("2026-01-02T00:00:00Z"))
        );
        assert_eq!(bucket_time(&json!(5), Granularity::Day), None);
    }
}

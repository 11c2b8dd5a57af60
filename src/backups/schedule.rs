//! Backup schedules: when a schedule is due. Slots are UTC minutes; the
//! scheduler of every replica queues the latest due slot of each enabled
//! schedule, and the unique `(schedule_id, slot)` of the job table keeps
//! exactly one job per slot however many replicas try.

use crate::domain::DomainError;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde_json::{Map, Value};

pub const FREQUENCIES: [&str; 4] = ["hourly", "daily", "weekly", "monthly"];

/// A schedule's timing.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub frequency: String,
    /// `HH:MM`, UTC (hourly uses only the minutes).
    pub hour: u32,
    pub minute: u32,
    /// 0 = Sunday … 6 = Saturday (weekly).
    pub day_of_week: Option<i32>,
    /// 1–31 (monthly; a shorter month uses its last day).
    pub day_of_month: Option<i32>,
}

/// `HH:MM` (24 h).
pub fn parse_time(text: &str) -> Result<(u32, u32), DomainError> {
    let bad = || DomainError::invalid_field("time_of_day", "must be \"HH:MM\" (24-hour, UTC)");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h, m))
}

fn at(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(hour, minute, 0).expect("checked time"))
}

fn month_day(year: i32, month: u32, day: i32) -> NaiveDate {
    let mut d = day.clamp(1, 31) as u32;
    loop {
        if let Some(date) = NaiveDate::from_ymd_opt(year, month, d) {
            return date;
        }
        d -= 1;
    }
}

impl Timing {
    /// The latest slot at or before `now`.
    pub fn latest_slot(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive();
        match self.frequency.as_str() {
            "hourly" => {
                let slot = at(today, now.hour(), self.minute);
                if slot > now {
                    slot - Duration::hours(1)
                } else {
                    slot
                }
            }
            "weekly" => {
                let want = self.day_of_week.unwrap_or(0).clamp(0, 6) as i64;
                let have = i64::from(now.weekday().num_days_from_sunday());
                let back = (have - want).rem_euclid(7);
                let slot = at(today - Duration::days(back), self.hour, self.minute);
                if slot > now {
                    slot - Duration::days(7)
                } else {
                    slot
                }
            }
            "monthly" => {
                let dom = self.day_of_month.unwrap_or(1);
                let slot = at(
                    month_day(now.year(), now.month(), dom),
                    self.hour,
                    self.minute,
                );
                if slot <= now {
                    return slot;
                }
                let (y, m) = match now.month() {
                    1 => (now.year() - 1, 12),
                    m => (now.year(), m - 1),
                };
                at(month_day(y, m, dom), self.hour, self.minute)
            }
            // daily
            _ => {
                let slot = at(today, self.hour, self.minute);
                if slot > now {
                    slot - Duration::days(1)
                } else {
                    slot
                }
            }
        }
    }
}

/// A schedule body (`POST`, or `PATCH` over the stored one): the checked
/// fields. Unknown fields are refused (400 naming them).
#[derive(Debug, Clone)]
pub struct ScheduleInput {
    pub client_name: String,
    pub timing: Timing,
    pub time_of_day: String,
    pub label: Option<String>,
    pub enabled: bool,
    pub execution_daemon_id: Option<String>,
}

const FIELDS: [&str; 8] = [
    "client_name",
    "frequency",
    "time_of_day",
    "day_of_week",
    "day_of_month",
    "label",
    "enabled",
    "execution_daemon_id",
];

fn text(body: &Map<String, Value>, field: &str) -> Result<Option<String>, DomainError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(DomainError::invalid_field(field, "must be a string")),
    }
}

fn int(
    body: &Map<String, Value>,
    field: &str,
    lo: i64,
    hi: i64,
) -> Result<Option<i32>, DomainError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if (lo..=hi).contains(&n) => Ok(Some(n as i32)),
            _ => Err(DomainError::invalid_field(
                field,
                format!("must be an integer from {lo} to {hi}"),
            )),
        },
    }
}

impl ScheduleInput {
    /// `body` applied over `old` (none: a new schedule, where
    /// `client_name` and `frequency` are required).
    pub fn merge(
        body: &Map<String, Value>,
        old: Option<&ScheduleInput>,
    ) -> Result<ScheduleInput, DomainError> {
        if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(DomainError::invalid_field(
                unknown.clone(),
                format!("unknown field; accepted: {}", FIELDS.join(", ")),
            ));
        }
        let client_name = match (text(body, "client_name")?, old) {
            (Some(c), _) if !c.is_empty() && c.len() <= 200 => c,
            (Some(_), _) => {
                return Err(DomainError::invalid_field(
                    "client_name",
                    "must be 1-200 characters",
                ))
            }
            (None, Some(o)) => o.client_name.clone(),
            (None, None) => return Err(DomainError::invalid_field("client_name", "is required")),
        };
        let frequency = match (text(body, "frequency")?, old) {
            (Some(f), _) => f.to_ascii_lowercase(),
            (None, Some(o)) => o.timing.frequency.clone(),
            (None, None) => {
                return Err(DomainError::invalid_field(
                    "frequency",
                    "is required (hourly, daily, weekly or monthly)",
                ))
            }
        };
        if !FREQUENCIES.contains(&frequency.as_str()) {
            return Err(DomainError::invalid_field(
                "frequency",
                "must be hourly, daily, weekly or monthly",
            ));
        }
        let time_of_day = match (text(body, "time_of_day")?, old) {
            (Some(t), _) => t,
            (None, Some(o)) => o.time_of_day.clone(),
            (None, None) => "00:00".to_string(),
        };
        let (hour, minute) = parse_time(&time_of_day)?;
        let day_of_week = match body.contains_key("day_of_week") {
            true => int(body, "day_of_week", 0, 6)?,
            false => old.and_then(|o| o.timing.day_of_week),
        };
        let day_of_month = match body.contains_key("day_of_month") {
            true => int(body, "day_of_month", 1, 31)?,
            false => old.and_then(|o| o.timing.day_of_month),
        };
        let label = match body.contains_key("label") {
            true => text(body, "label")?,
            false => old.and_then(|o| o.label.clone()),
        };
        if let Some(l) = &label {
            super::check_label(l)?;
        }
        let enabled = match body.get("enabled") {
            None | Some(Value::Null) => old.is_none_or(|o| o.enabled),
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(DomainError::invalid_field("enabled", "must be a boolean")),
        };
        let execution_daemon_id = match body.contains_key("execution_daemon_id") {
            true => text(body, "execution_daemon_id")?.filter(|s| !s.is_empty()),
            false => old.and_then(|o| o.execution_daemon_id.clone()),
        };
        if execution_daemon_id.as_ref().is_some_and(|d| d.len() > 200) {
            return Err(DomainError::invalid_field(
                "execution_daemon_id",
                "at most 200 characters",
            ));
        }
        Ok(ScheduleInput {
            client_name,
            time_of_day: format!("{hour:02}:{minute:02}"),
            timing: Timing {
                frequency,
                hour,
                minute,
                day_of_week,
                day_of_month,
            },
            label,
            enabled,
            execution_daemon_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn timing(f: &str, h: u32, m: u32, dow: Option<i32>, dom: Option<i32>) -> Timing {
        Timing {
            frequency: f.into(),
            hour: h,
            minute: m,
            day_of_week: dow,
            day_of_month: dom,
        }
    }

    #[test]
    fn latest_slots_by_frequency() {
        let now = t("2026-03-11T10:30:00Z"); // a Wednesday
        assert_eq!(
            timing("hourly", 0, 15, None, None).latest_slot(now),
            t("2026-03-11T10:15:00Z")
        );
        assert_eq!(
            timing("hourly", 0, 45, None, None).latest_slot(now),
            t("2026-03-11T09:45:00Z")
        );
        assert_eq!(
            timing("daily", 10, 30, None, None).latest_slot(now),
            t("2026-03-11T10:30:00Z")
        );
        assert_eq!(
            timing("daily", 11, 0, None, None).latest_slot(now),
            t("2026-03-10T11:00:00Z")
        );
        assert_eq!(
            timing("weekly", 2, 0, Some(3), None).latest_slot(now),
            t("2026-03-11T02:00:00Z")
        );
        assert_eq!(
            timing("weekly", 12, 0, Some(3), None).latest_slot(now),
            t("2026-03-04T12:00:00Z")
        );
        assert_eq!(
            timing("weekly", 0, 0, Some(0), None).latest_slot(now),
            t("2026-03-08T00:00:00Z")
        );
        assert_eq!(
            timing("monthly", 0, 0, Some(0), Some(31)).latest_slot(now),
            t("2026-02-28T00:00:00Z")
        );
        assert_eq!(
            timing("monthly", 0, 0, None, Some(1)).latest_slot(now),
            t("2026-03-01T00:00:00Z")
        );
        assert_eq!(
            timing("monthly", 0, 0, None, Some(15)).latest_slot(t("2026-01-10T00:00:00Z")),
            t("2025-12-15T00:00:00Z")
        );
    }

    #[test]
    fn times_and_bodies_are_checked() {
        assert_eq!(parse_time("07:05").unwrap(), (7, 5));
        for bad in ["7:05", "24:00", "12:60", "x", "12-00"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        let body = |v: Value| v.as_object().unwrap().clone();
        assert!(
            ScheduleInput::merge(&body(serde_json::json!({"frequency": "daily"})), None).is_err()
        );
        assert!(ScheduleInput::merge(
            &body(serde_json::json!({"client_name": "a", "frequency": "yearly"})),
            None
        )
        .is_err());
        assert!(ScheduleInput::merge(
            &body(serde_json::json!({"client_name": "a", "frequency": "daily", "x": 1})),
            None
        )
        .is_err());
        let s = ScheduleInput::merge(&body(serde_json::json!({"client_name": "a", "frequency": "weekly", "day_of_week": 2, "time_of_day": "03:04"})), None).unwrap();
        assert_eq!(
            (
                s.timing.hour,
                s.timing.minute,
                s.timing.day_of_week,
                s.enabled
            ),
            (3, 4, Some(2), true)
        );
        let p =
            ScheduleInput::merge(&body(serde_json::json!({"enabled": false})), Some(&s)).unwrap();
        assert_eq!(
            (p.client_name.as_str(), p.enabled, p.timing.day_of_week),
            ("a", false, Some(2))
        );
    }
}

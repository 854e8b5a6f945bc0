//! When a task runs by itself: `manual`, `once:<RFC3339>`, `every:<N>m|h`,
//! `daily:HH:MM` (local time of the device), `agent-start`.
//! [`Schedule::next_due`] is pure: the clock and time zone are passed in.

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest `every:` period accepted (one year), so sums never overflow.
const MAX_PERIOD_SECS: u64 = 366 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Schedule {
    /// Only when asked (`task run`).
    Manual,
    /// Once, at this time.
    Once(DateTime<Utc>),
    /// Every N seconds (given in minutes or hours), first as soon as the agent sees it.
    Every { seconds: u64 },
    /// Every day at this local time.
    Daily { hour: u32, minute: u32 },
    /// Each time the agent starts.
    AgentStart,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad schedule {spec:?}: {why} (expected manual, once:<RFC3339>, every:<N>m|h, daily:HH:MM or agent-start)")]
pub struct ParseScheduleError {
    pub spec: String,
    pub why: &'static str,
}

impl FromStr for Schedule {
    type Err = ParseScheduleError;
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let err = |why| ParseScheduleError {
            spec: spec.to_string(),
            why,
        };
        let (kind, arg) = spec.split_once(':').unwrap_or((spec, ""));
        match kind {
            "manual" if arg.is_empty() => Ok(Schedule::Manual),
            "agent-start" if arg.is_empty() => Ok(Schedule::AgentStart),
            "once" => DateTime::parse_from_rfc3339(arg)
                .map(|t| Schedule::Once(t.with_timezone(&Utc)))
                .map_err(|_| err("not an RFC 3339 time such as 2026-05-01T03:00:00Z")),
            "every" => {
                // The unit stays required here (a bare number was minutes
                // once); the number itself is read by the one grammar.
                if !arg.ends_with(['m', 'h']) {
                    return Err(err("period unit must be m or h"));
                }
                let seconds = crate::duration::parse(arg)
                    .map_err(|_| err("period must be a number followed by m or h"))?;
                if seconds % 60 != 0 {
                    return Err(err("period must be whole minutes"));
                }
                let seconds = Some(seconds)
                    .filter(|s| (1..=MAX_PERIOD_SECS).contains(s))
                    .ok_or_else(|| err("period must be between 1m and 366 days"))?;
                Ok(Schedule::Every { seconds })
            }
            "daily" => {
                let t = NaiveTime::parse_from_str(arg, "%H:%M")
                    .map_err(|_| err("time must be HH:MM"))?;
                use chrono::Timelike;
                Ok(Schedule::Daily {
                    hour: t.hour(),
                    minute: t.minute(),
                })
            }
            _ => Err(err("unknown kind")),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Manual => f.write_str("manual"),
            Schedule::Once(t) => write!(
                f,
                "once:{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            Schedule::Every { seconds } if seconds % 3600 == 0 => {
                write!(f, "every:{}h", seconds / 3600)
            }
            Schedule::Every { seconds } => write!(f, "every:{}m", seconds / 60),
            Schedule::Daily { hour, minute } => write!(f, "daily:{hour:02}:{minute:02}"),
            Schedule::AgentStart => f.write_str("agent-start"),
        }
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Schedule {
    type Error = ParseScheduleError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl Schedule {
    /// When the task is next due by time, given when it was created and when
    /// the schedule last fired; `None` if it is not due by time (`manual`,
    /// `agent-start`, a `once` that fired). A due time at or before `now` means
    /// "run now"; missed occurrences collapse into one run.
    pub fn next_due<Tz: TimeZone>(
        &self,
        created: DateTime<Utc>,
        last_fired: Option<DateTime<Utc>>,
        tz: &Tz,
    ) -> Option<DateTime<Utc>> {
        match *self {
            Schedule::Manual | Schedule::AgentStart => None,
            Schedule::Once(at) => match last_fired {
                Some(last) if last >= at => None,
                _ => Some(at),
            },
            Schedule::Every { seconds } => match last_fired {
                None => Some(created),
                Some(last) => {
                    Some(last + chrono::Duration::seconds(seconds.min(MAX_PERIOD_SECS) as i64))
                }
            },
            Schedule::Daily { hour, minute } => {
                let after = last_fired.map_or(created, |l| l.max(created));
                next_local_time_after(after, hour, minute, tz)
            }
        }
    }
}

/// The first instant strictly after `after` whose local wall time in `tz` is
/// HH:MM. A wall time skipped by a DST jump falls on the next valid day; a
/// repeated one takes its first instant.
fn next_local_time_after<Tz: TimeZone>(
    after: DateTime<Utc>,
    hour: u32,
    minute: u32,
    tz: &Tz,
) -> Option<DateTime<Utc>> {
    let time = NaiveTime::from_hms_opt(hour, minute, 0)?;
    let mut day = after.with_timezone(tz).date_naive();
    // A few days suffice for any DST rule; bounded so a strange zone cannot loop.
    for _ in 0..8 {
        if let Some(t) = tz.from_local_datetime(&day.and_time(time)).earliest() {
            let t = t.with_timezone(&Utc);
            if t > after {
                return Some(t);
            }
        }
        day = day.checked_add_days(Days::new(1))?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_and_prints_every_kind() {
        for spec in [
            "manual",
            "agent-start",
            "once:2026-05-01T03:00:00Z",
            "every:15m",
            "every:2h",
            "daily:03:30",
        ] {
            let s: Schedule = spec.parse().unwrap();
            assert_eq!(s.to_string(), spec);
        }
        assert_eq!(
            "every:90m".parse::<Schedule>().unwrap(),
            Schedule::Every { seconds: 5400 }
        );
        for bad in [
            "",
            "weekly",
            "every:0m",
            "every:5x",
            "every:m",
            "daily:25:00",
            "daily:3",
            "once:tomorrow",
            "manual:x",
        ] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn manual_and_agent_start_are_never_due_by_time() {
        let now = t("2026-03-01T00:00:00Z");
        assert_eq!(Schedule::Manual.next_due(now, None, &Utc), None);
        assert_eq!(Schedule::AgentStart.next_due(now, Some(now), &Utc), None);
    }

    #[test]
    fn once_is_due_until_it_fired() {
        let at = t("2026-03-02T10:00:00Z");
        let s = Schedule::Once(at);
        let created = t("2026-03-01T00:00:00Z");
        assert_eq!(s.next_due(created, None, &Utc), Some(at));
        assert_eq!(
            s.next_due(created, Some(t("2026-03-01T12:00:00Z")), &Utc),
            Some(at)
        );
        assert_eq!(
            s.next_due(created, Some(t("2026-03-02T10:00:05Z")), &Utc),
            None
        );
    }

    #[test]
    fn every_is_due_at_creation_then_each_period_after_the_last_fire() {
        let s: Schedule = "every:30m".parse().unwrap();
        let created = t("2026-03-01T00:00:00Z");
        assert_eq!(s.next_due(created, None, &Utc), Some(created));
        assert_eq!(
            s.next_due(created, Some(t("2026-03-01T08:10:00Z")), &Utc),
            Some(t("2026-03-01T08:40:00Z"))
        );
    }

    #[test]
    fn daily_is_the_next_wall_time_after_the_last_fire_in_the_device_zone() {
        let s: Schedule = "daily:03:00".parse().unwrap();
        let created = t("2026-03-01T10:00:00Z");
        // Created after 03:00 UTC: first due tomorrow.
        assert_eq!(
            s.next_due(created, None, &Utc),
            Some(t("2026-03-02T03:00:00Z"))
        );
        // Fired at 03:00:07: next is the day after.
        assert_eq!(
            s.next_due(created, Some(t("2026-03-02T03:00:07Z")), &Utc),
            Some(t("2026-03-03T03:00:00Z"))
        );
        // In UTC+2, 03:00 local is 01:00 UTC.
        let tz = FixedOffset::east_opt(2 * 3600).unwrap();
        assert_eq!(
            s.next_due(created, None, &tz),
            Some(t("2026-03-02T01:00:00Z"))
        );
    }

    #[test]
    fn every_reads_its_period_through_the_one_duration_grammar() {
        let s: Schedule = "every:1h30m".parse().unwrap();
        assert_eq!(s, Schedule::Every { seconds: 5400 });
        assert_eq!(s.to_string(), "every:90m");
        for bad in [
            "every:90",
            "every:90s",
            "every:1d",
            "every:30m1h",
            "every:-5m",
            "every:99999999999999999999m",
        ] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad}");
        }
    }
}

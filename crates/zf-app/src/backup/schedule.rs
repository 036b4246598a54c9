//! When the server backs up, how long it keeps what, and when a restore test or a drill is due.
//! Everything here is a pure function of timestamps, so the year-long behaviour is tested by
//! simulation rather than by waiting.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;

use super::s3::S3Config;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The recovery time objective the drill is measured against.
pub const RTO_OBJECTIVE_MS: i64 = 4 * HOUR_MS;

/// A local time of day, written `"02:30"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DailyAt {
    pub hour: u8,
    pub minute: u8,
}

impl DailyAt {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a time of day like \"02:30\"");
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let hour: u8 = h.parse().map_err(|_| bad())?;
        let minute: u8 = m.parse().map_err(|_| bad())?;
        if hour > 23 || minute > 59 {
            return Err(bad());
        }
        Ok(DailyAt { hour, minute })
    }

    fn offset_in_day_ms(self) -> i64 {
        (i64::from(self.hour) * 60 + i64::from(self.minute)) * MINUTE_MS
    }
}

impl<'de> Deserialize<'de> for DailyAt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DailyAt::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How many backups to keep: the newest of each of the last `daily` days, `weekly` weeks
/// (Monday to Sunday) and `monthly` calendar months that have one, in local time.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            daily: 7,
            weekly: 4,
            monthly: 12,
        }
    }
}

/// `[backup]` in the configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Scheduled backups and restore tests; "back up now" works either way.
    pub enabled: bool,
    /// The local time of the daily backup.
    pub schedule: DailyAt,
    /// Offset of local time from UTC (China: 8), for the schedule and for retention's days.
    pub utc_offset_hours: i64,
    /// A directory (local disk, NFS mount, USB disk) that must exist.
    pub directory: Option<PathBuf>,
    /// An S3-compatible object store for the off-site copy: `[backup.s3]`.
    pub s3: Option<S3Config>,
    pub retention: Retention,
    /// Days between automatic restore tests (0: only when asked for).
    pub restore_test_every_days: u32,
    /// Days after which a drill (`zhangfang drill`) is shown as overdue.
    pub drill_every_days: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            enabled: true,
            schedule: DailyAt {
                hour: 2,
                minute: 30,
            },
            utc_offset_hours: 8,
            directory: None,
            s3: None,
            retention: Retention::default(),
            restore_test_every_days: 30,
            drill_every_days: 90,
        }
    }
}

impl BackupConfig {
    pub fn has_target(&self) -> bool {
        self.directory.is_some() || self.s3.is_some()
    }

    fn offset_ms(&self) -> i64 {
        self.utc_offset_hours * HOUR_MS
    }

    /// The most recent scheduled moment at or before `now_ms`.
    pub fn last_slot(&self, now_ms: i64) -> i64 {
        let local = now_ms + self.offset_ms();
        let mut slot = local - local.rem_euclid(DAY_MS) + self.schedule.offset_in_day_ms();
        if slot > local {
            slot -= DAY_MS;
        }
        slot - self.offset_ms()
    }

    /// A scheduled backup is due when no backup run has started since the last scheduled
    /// moment; one that was missed (the server was down) is taken as soon as it is back.
    pub fn backup_due(&self, now_ms: i64, last_backup_started_ms: Option<i64>) -> bool {
        self.enabled
            && self.has_target()
            && last_backup_started_ms.is_none_or(|t| t < self.last_slot(now_ms))
    }

    /// A restore test is due when the last one is older than its interval.
    pub fn restore_test_due(&self, now_ms: i64, last_test_started_ms: Option<i64>) -> bool {
        self.enabled
            && self.restore_test_every_days > 0
            && overdue(now_ms, last_test_started_ms, self.restore_test_every_days)
    }

    /// Keep-or-delete for backups taken at `times` (ms), in the same order.
    pub fn keep(&self, times: &[i64]) -> Vec<bool> {
        keep(times, &self.retention, self.utc_offset_hours)
    }
}

/// Whether something that should happen every `days` days last happened too long ago (or never).
pub fn overdue(now_ms: i64, last_ms: Option<i64>, days: u32) -> bool {
    last_ms.is_none_or(|t| now_ms - t > i64::from(days) * DAY_MS)
}

/// Which period (day, week, month) a time falls in, given the offset of local time.
type Period = fn(i64, i64) -> i64;

fn local_day(t: i64, offset_hours: i64) -> i64 {
    (t + offset_hours * HOUR_MS).div_euclid(DAY_MS)
}

/// 1970-01-01 was a Thursday; shifting by three days makes weeks start on Monday.
fn local_week(t: i64, offset_hours: i64) -> i64 {
    (local_day(t, offset_hours) + 3).div_euclid(7)
}

fn local_month(t: i64, offset_hours: i64) -> i64 {
    let date =
        time::OffsetDateTime::from_unix_timestamp((t + offset_hours * HOUR_MS).div_euclid(1000))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    i64::from(date.year()) * 12 + i64::from(u8::from(date.month()))
}

/// Which backups retention keeps: for each rule, walking from the newest backup back, the
/// newest backup of each period until `count` periods are covered. The newest backup is
/// always kept, so no policy can delete the last copy. Of two backups with the same time the
/// later in `times` counts as the newer.
pub fn keep(times: &[i64], policy: &Retention, offset_hours: i64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((times[i], i)));
    let mut kept = vec![false; times.len()];
    if let Some(&newest) = order.first() {
        kept[newest] = true;
    }
    let rules: [(u32, Period); 3] = [
        (policy.daily, local_day),
        (policy.weekly, local_week),
        (policy.monthly, local_month),
    ];
    for (count, period) in rules {
        let mut seen = HashSet::new();
        for &i in &order {
            if seen.len() >= count as usize {
                break;
            }
            if seen.insert(period(times[i], offset_hours)) {
                kept[i] = true;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T02:30:00+08:00.
    const START: i64 = 1_767_205_800_000;

    fn config() -> BackupConfig {
        BackupConfig {
            directory: Some("/mnt/backup".into()),
            ..BackupConfig::default()
        }
    }

    #[test]
    fn times_of_day_parse_strictly() {
        assert_eq!(
            DailyAt::parse("02:30").unwrap(),
            DailyAt {
                hour: 2,
                minute: 30
            }
        );
        assert_eq!(
            DailyAt::parse("23:59").unwrap(),
            DailyAt {
                hour: 23,
                minute: 59
            }
        );
        for bad in ["2:30", "24:00", "12:60", "0230", "aa:bb", "", "02:30:00"] {
            assert!(DailyAt::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_daily_slot_is_in_local_time_and_a_missed_one_is_caught_up() {
        let c = config();
        // 02:30 Beijing time is 18:30 UTC the day before.
        assert_eq!(c.last_slot(START), START);
        assert_eq!(c.last_slot(START + 1), START);
        assert_eq!(c.last_slot(START - 1), START - DAY_MS);
        assert!(c.backup_due(START, None));
        assert!(c.backup_due(START + 5 * MINUTE_MS, Some(START - DAY_MS)));
        assert!(!c.backup_due(START + 5 * MINUTE_MS, Some(START + MINUTE_MS)));
        assert!(!c.backup_due(START - MINUTE_MS, Some(START - DAY_MS + HOUR_MS)));
        // Down over the slot: due as soon as it is back, then not again until the next slot.
        assert!(c.backup_due(START + 9 * HOUR_MS, Some(START - DAY_MS)));
        assert!(!c.backup_due(START + 23 * HOUR_MS, Some(START + 9 * HOUR_MS)));
        assert!(c.backup_due(START + DAY_MS, Some(START + 9 * HOUR_MS)));
        let off = BackupConfig {
            enabled: false,
            ..config()
        };
        assert!(!off.backup_due(START, None));
        assert!(
            !BackupConfig::default().backup_due(START, None),
            "no target"
        );
    }

    #[test]
    fn restore_tests_and_drills_fall_due_after_their_interval() {
        let c = config();
        assert!(c.restore_test_due(START, None));
        assert!(!c.restore_test_due(START + 30 * DAY_MS, Some(START)));
        assert!(c.restore_test_due(START + 30 * DAY_MS + 1, Some(START)));
        assert!(overdue(START + 91 * DAY_MS, Some(START), 90));
        assert!(!overdue(START + 89 * DAY_MS, Some(START), 90));
    }

    #[test]
    fn a_simulated_year_of_daily_backups_keeps_7_daily_4_weekly_12_monthly() {
        let c = config();
        let mut times: Vec<i64> = Vec::new();
        let mut kept_ever = Vec::new();
        // Every day of 2026 a backup is taken and retention runs, as the server does.
        for day in 0..365 {
            times.push(START + day * DAY_MS + 7 * 1000);
            let keep = c.keep(&times);
            times = times
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(t, _)| *t)
                .collect();
            kept_ever.push(times.len());
        }
        let newest = *times.iter().max().unwrap();
        let days: Vec<i64> = times.iter().map(|t| (newest - t) / DAY_MS).collect();
        // The last seven days, every one.
        for d in 0..7 {
            assert!(days.contains(&d), "day -{d} kept: {days:?}");
        }
        // One backup in each of the last 12 months, and nothing older than a year.
        let months: HashSet<i64> = times.iter().map(|&t| local_month(t, 8)).collect();
        assert_eq!(months.len(), 12, "{days:?}");
        assert!(days.iter().all(|&d| d < 366));
        // Four weeks are covered by their newest backup (a Sunday, or today).
        let weeks: HashSet<i64> = times
            .iter()
            .map(|&t| local_week(t, 8))
            .filter(|w| *w > local_week(newest, 8) - 4)
            .collect();
        assert_eq!(weeks.len(), 4);
        // Bounded: never more than the rules' sum, after the first days.
        assert!(kept_ever.iter().all(|&n| n <= 7 + 4 + 12));
        assert!(times.len() >= 12 + 4, "{}", times.len());
        // Monthly keepers are the month's last backup.
        for &t in &times {
            if (newest - t) / DAY_MS > 35 {
                let next_day = t + DAY_MS;
                assert_ne!(local_month(t, 8), local_month(next_day, 8), "{t}");
            }
        }
    }

    #[test]
    fn retention_never_deletes_the_last_backup() {
        let none = Retention {
            daily: 0,
            weekly: 0,
            monthly: 0,
        };
        assert_eq!(keep(&[START, START + DAY_MS], &none, 8), vec![false, true]);
        assert!(keep(&[], &none, 8).is_empty());
        assert_eq!(
            keep(&[START, START], &Retention::default(), 8),
            vec![false, true],
            "a tie goes to the later"
        );
    }
}

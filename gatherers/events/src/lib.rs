//! Gathers the recent warning events of the Machine API into `events/openshift-machine-api.json`,
//! as the Insights Operator's `clusterconfig/openshift_machine_api_events` does
//! (`gather_openshift_machine_api_events.go`): events of `openshift-machine-api` whose type is
//! not `Normal` and whose last time (`lastTimestamp`, or `series.lastObservedTime` when unset)
//! falls within the gathering interval before now, as `{namespace, lastTimestamp, reason,
//! message, type}` sorted by time. No such event, no record.
//!
//! "Now" is the host's clock (ABI `now`). The interval is IO's default, 2 hours, unless the
//! module config says `{"intervalSeconds": N}`.

use hostapi::guest::{self, List, Result};
use serde_json::{Value, json};

hostapi::gatherer! {
    name: "events",
    description: "Recent non-Normal events of openshift-machine-api (events/openshift-machine-api.json)",
    reproduces: ["clusterconfig/openshift_machine_api_events"],
    permissions: ["GET /api/v1/namespaces/openshift-machine-api/events"],
    run: gather,
}

const NAMESPACE: &str = "openshift-machine-api";
const DEFAULT_INTERVAL_SECONDS: i64 = 2 * 3600;
const FIELDS: [&str; 6] = ["/type", "/lastTimestamp", "/series/lastObservedTime", "/reason", "/message", "/metadata/namespace"];

fn gather() -> Result<()> {
    let interval = guest::config().get("intervalSeconds").and_then(Value::as_i64).filter(|s| *s > 0).unwrap_or(DEFAULT_INTERVAL_SECONDS);
    let since = guest::now_ms().saturating_sub(interval.saturating_mul(1000));
    let mut list = match List::open(&format!("/api/v1/namespaces/{NAMESPACE}/events"), &FIELDS) {
        Ok(l) => l,
        Err(guest::Error::Status { status: 404, .. }) => return Ok(()),
        Err(e) => {
            guest::error(format!("events of {NAMESPACE}: {e}"));
            return Ok(());
        }
    };
    let mut kept: Vec<(i64, Value)> = Vec::new();
    while let Some(page) = list.next_page()? {
        for e in page.items() {
            if e["/type"].as_str() == Some("Normal") {
                continue;
            }
            let stamp = e["/lastTimestamp"].as_str().filter(|s| !s.is_empty()).or_else(|| e["/series/lastObservedTime"].as_str());
            let Some((stamp, ms)) = stamp.and_then(|s| rfc3339_ms(s).map(|ms| (s, ms))) else { continue };
            if ms <= since {
                continue;
            }
            let text = |f: &str| e[f].as_str().unwrap_or_default().to_owned();
            kept.push((
                ms,
                json!({ "namespace": text("/metadata/namespace"), "lastTimestamp": stamp, "reason": text("/reason"),
                        "message": text("/message"), "type": text("/type") }),
            ));
        }
    }
    if kept.is_empty() {
        return Ok(());
    }
    kept.sort_by_key(|(ms, _)| *ms);
    let items: Vec<Value> = kept.into_iter().map(|(_, v)| v).collect();
    guest::skip_refused(guest::record_json("events/openshift-machine-api.json", json!({ "items": items })))?;
    Ok(())
}

/// Milliseconds since the epoch of an RFC 3339 time (`2022-08-24T11:40:44+02:00`,
/// `…44.123Z`); `None` when it is not one.
fn rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = s.get(start..i).filter(|f| !f.is_empty())?;
        millis = format!("{frac:0<3}")[..3].parse::<i64>().ok()?;
    }
    let offset_minutes = match s.get(i..)? {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && matches!(tz.as_bytes()[0], b'+' | b'-') && tz.as_bytes()[3] == b':' => {
            let m = tz[1..3].parse::<i64>().ok()? * 60 + tz[4..6].parse::<i64>().ok()?;
            if tz.starts_with('-') { -m } else { m }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_are_read() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms("2022-08-24T11:40:44+02:00"), Some(1_661_334_044_000));
        assert_eq!(rfc3339_ms("2022-08-24T09:40:44.5Z"), Some(1_661_334_044_500));
        assert_eq!(rfc3339_ms("2000-02-29T23:59:59-00:30"), Some(951_870_599_000));
        for bad in ["", "2022-08-24", "2022-13-01T00:00:00Z", "2022-08-24T11:40:44", "2022-08-24T11:40:44+0200", "not a time at all!!"] {
            assert_eq!(rfc3339_ms(bad), None, "{bad}");
        }
    }
}

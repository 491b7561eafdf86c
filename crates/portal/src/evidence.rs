//! What the dashboard shows of the engine's event log and the DC's operations, filtered so
//! that the evidence an exercise asks for is still found an hour later: heartbeats (one
//! every 30 s) hidden unless asked for, events by ID, level, tracking ID or since the
//! exercise began; the pages' own LDAP reads kept out of the operations unless asked for.
//! Plain functions over the API's JSON.

use serde_json::Value;

use crate::pages::{EventRow, OpRow};

/// Connect's ServiceBusHeartBeat: one every 30 s while the relay link is up.
pub const HEARTBEAT: u64 = 31019;
/// At most this many events are shown, newest first (the engine keeps 10,000).
pub const EVENTS_SHOWN: usize = 50;
/// At most this many of the DC's operations are shown, newest first (the DC keeps 200).
pub const OPERATIONS_SHOWN: usize = 30;

/// The event view's filter, as the dashboard's form sends it (query parameters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only these IDs (empty: any).
    pub ids: Vec<u64>,
    /// Information, Warning or Error (None: any).
    pub level: Option<String>,
    /// Events whose tracking ID starts with this (None: any).
    pub tracking: Option<String>,
    /// Only events logged after the exercise began.
    pub since_exercise: bool,
    /// Heartbeats too (hidden by default, unless asked for by ID).
    pub heartbeats: bool,
}

impl EventFilter {
    /// Reads the form's fields; Err: the text of an ID that is not a number.
    pub fn parse(ids: &str, level: &str, tracking: &str, since: &str, heartbeats: bool) -> Result<EventFilter, String> {
        let mut parsed = vec![];
        for id in ids.split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()) {
            parsed.push(id.parse::<u64>().map_err(|_| format!("{id:?} is not an event ID (a number such as 33004)"))?);
        }
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(EventFilter {
            ids: parsed,
            level: some(level).filter(|l| l != "any"),
            tracking: some(tracking),
            since_exercise: since == "exercise",
            heartbeats,
        })
    }

    /// Whether anything narrows the view beyond hiding heartbeats.
    pub fn narrows(&self) -> bool {
        !self.ids.is_empty() || self.level.is_some() || self.tracking.is_some() || self.since_exercise
    }

    fn keeps(&self, e: &Value) -> bool {
        let id = e["id"].as_u64().unwrap_or(0);
        (self.ids.is_empty() || self.ids.contains(&id))
            && (id != HEARTBEAT || self.heartbeats || self.ids.contains(&HEARTBEAT))
            && self.level.as_deref().is_none_or(|l| e["level"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(l)))
            && self
                .tracking
                .as_deref()
                .is_none_or(|t| e["trackingId"].as_str().is_some_and(|x| x.to_ascii_lowercase().starts_with(&t.to_ascii_lowercase())))
    }
}

/// The events to show (newest first, at most [`EVENTS_SHOWN`]) and how many matched in all.
/// `exercise_began`: how many events the log held when the exercise began.
pub fn events(all: &[Value], f: &EventFilter, exercise_began: Option<usize>) -> (Vec<EventRow>, usize) {
    let from = if f.since_exercise { exercise_began.unwrap_or(0).min(all.len()) } else { 0 };
    let matching: Vec<&Value> = all[from..].iter().filter(|e| f.keeps(e)).collect();
    let rows = matching
        .iter()
        .rev()
        .take(EVENTS_SHOWN)
        .map(|e| EventRow {
            time: e["time"].as_str().unwrap_or_default().to_string(),
            id: e["id"].as_u64().unwrap_or(0),
            level: e["level"].as_str().unwrap_or_default().to_string(),
            message: e["message"].as_str().unwrap_or_default().to_string(),
            tracking: e["trackingId"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    (rows, matching.len())
}

/// The DC's operations to show (newest first, at most [`OPERATIONS_SHOWN`]), and how many of
/// the pages' own were left out. `own`: whether a client address is one of the pages'.
pub fn operations(all: &[Value], own: impl Fn(&str) -> bool, show_own: bool) -> (Vec<OpRow>, usize) {
    let mut hidden = 0;
    let rows = all
        .iter()
        .rev()
        .filter_map(|o| {
            let client = o["client"].as_str().unwrap_or_default();
            let mine = own(client);
            if mine && !show_own {
                hidden += 1;
                return None;
            }
            Some(OpRow {
                client: client.to_string(),
                own: mine,
                who: o["who"].as_str().unwrap_or_default().to_string(),
                request: o["request"].as_str().unwrap_or_default().to_string(),
                result: o["result"].as_str().unwrap_or_default().to_string(),
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .take(OPERATIONS_SHOWN)
        .collect();
    (rows, hidden)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log() -> Vec<Value> {
        let e = |id: u64, level: &str, tracking: Option<&str>| json!({ "id": id, "level": level, "trackingId": tracking, "message": id.to_string(), "time": "t" });
        let mut v = vec![e(31005, "Information", None), e(31001, "Information", Some("AB12-1"))];
        // the exercise begins here (2 events logged), then an hour of heartbeats buries the rest
        v.push(e(31001, "Information", Some("cd34-2")));
        v.push(e(33004, "Error", Some("cd34-2")));
        v.push(e(6329, "Error", Some("cd34-2")));
        v.push(e(31003, "Error", Some("cd34-2")));
        v.extend((0..120).map(|_| e(HEARTBEAT, "Information", None)));
        v
    }

    fn ids(rows: &[EventRow]) -> Vec<u64> {
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn an_hour_of_heartbeats_does_not_bury_the_evidence() {
        let all = log();
        let (rows, n) = events(&all, &EventFilter::default(), Some(2));
        assert_eq!(ids(&rows), vec![31003, 6329, 33004, 31001, 31001, 31005], "newest first, no heartbeat");
        assert_eq!(n, 6);
        let (rows, n) = events(&all, &EventFilter { heartbeats: true, ..Default::default() }, Some(2));
        assert_eq!((rows.len(), n), (EVENTS_SHOWN, 126), "with heartbeats: the newest 50 of all");
        assert!(rows.iter().all(|r| r.id == HEARTBEAT));
        let asked = EventFilter::parse("31019", "", "", "", false).unwrap();
        assert_eq!(events(&all, &asked, None).1, 120, "asked for by ID, heartbeats show");
    }

    #[test]
    fn events_filter_by_id_level_tracking_id_and_since_the_exercise() {
        let all = log();
        let f = |ids: &str, level: &str, tracking: &str, since: &str| EventFilter::parse(ids, level, tracking, since, false).unwrap();
        assert_eq!(ids(&events(&all, &f("33004, 6329", "", "", ""), None).0), vec![6329, 33004]);
        assert_eq!(ids(&events(&all, &f("", "Error", "", ""), None).0), vec![31003, 6329, 33004]);
        assert_eq!(
            ids(&events(&all, &f("", "any", "CD34", ""), None).0),
            vec![31003, 6329, 33004, 31001],
            "a tracking ID's start, any case"
        );
        assert_eq!(ids(&events(&all, &f("31001", "", "", "exercise"), Some(2)).0), vec![31001], "the one before the exercise is left out");
        assert_eq!(events(&all, &f("31001", "", "", "exercise"), Some(2)).0[0].tracking, "cd34-2");
        assert_eq!(ids(&events(&all, &f("31001", "", "", "exercise"), Some(500)).0), Vec::<u64>::new(), "a start past the log's end");
        assert!(EventFilter::parse("33004, x1", "", "", "", false).unwrap_err().contains("\"x1\""));
        assert!(!f("", "any", "", "all").narrows() && f("", "", "", "exercise").narrows());
    }

    #[test]
    fn the_pages_own_reads_are_left_out_of_the_operations_unless_asked_for() {
        let op =
            |client: &str, request: &str| json!({ "client": client, "who": "CN=Administrator", "request": request, "result": "success" });
        let all = vec![op("127.0.0.1:40001", "modify CN=User1"), op("127.0.0.1:40002", "search (rootDSE)"), op("127.0.0.1:40003", "bind")];
        let own = |c: &str| c == "127.0.0.1:40002";
        let (rows, hidden) = operations(&all, own, false);
        assert_eq!(rows.iter().map(|r| r.client.as_str()).collect::<Vec<_>>(), vec!["127.0.0.1:40003", "127.0.0.1:40001"]);
        assert_eq!(hidden, 1);
        let (rows, hidden) = operations(&all, own, true);
        assert_eq!((rows.len(), hidden), (3, 0));
        assert!(rows[1].own && !rows[0].own, "shown, and marked");
        let many: Vec<Value> = (0..100).map(|i| op(&format!("127.0.0.1:{}", 41000 + i), "bind")).collect();
        assert_eq!(operations(&many, |_| false, false).0.len(), OPERATIONS_SHOWN);
    }
}

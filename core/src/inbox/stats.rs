//! How long people take to respond: from a thread's opening to its decision (approvals) or
//! first reply (questions, escalations, notices), per workspace and kind. `/stats` in chat
//! shows this month's median and 95th percentile; `/metrics` has the same as a histogram.

use super::ThreadKind;
use crate::actor::Actor;
use crate::ports::RepoError;
use crate::service::Krake;
use crate::time::Timestamp;
use crate::workspace::WorkspaceSlug;
use std::time::Duration;

/// How long one thread waited for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseTime {
    /// Its workspace.
    pub workspace: WorkspaceSlug,
    /// Its kind.
    pub kind: ThreadKind,
    /// From its opening to the decision or first reply.
    pub waited: Duration,
}

/// Response times of one workspace and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseStats {
    /// The workspace.
    pub workspace: WorkspaceSlug,
    /// The kind.
    pub kind: ThreadKind,
    /// How many threads were decided or answered.
    pub count: usize,
    /// The median wait.
    pub median: Duration,
    /// The 95th percentile wait (nearest rank).
    pub p95: Duration,
}

/// Groups response times by workspace and kind, with median and p95 (nearest rank), in
/// workspace then kind order.
pub fn summarise(times: &[ResponseTime]) -> Vec<ResponseStats> {
    let mut groups: std::collections::BTreeMap<(String, String), Vec<Duration>> =
        std::collections::BTreeMap::new();
    let mut keys = std::collections::BTreeMap::new();
    for t in times {
        let k = (t.workspace.to_string(), t.kind.to_string());
        keys.entry(k.clone())
            .or_insert_with(|| (t.workspace.clone(), t.kind));
        groups.entry(k).or_default().push(t.waited);
    }
    groups
        .into_iter()
        .filter_map(|(k, mut waits)| {
            let (workspace, kind) = keys.get(&k)?.clone();
            waits.sort();
            let at = |q: f64| {
                let rank = ((q * waits.len() as f64).ceil() as usize).clamp(1, waits.len());
                waits[rank - 1]
            };
            Some(ResponseStats {
                workspace,
                kind,
                count: waits.len(),
                median: at(0.5),
                p95: at(0.95),
            })
        })
        .collect()
}

/// The first millisecond of the UTC month `at` falls in.
pub fn month_start(at: Timestamp) -> Timestamp {
    const DAY: i64 = 86_400_000;
    let day = at.day_at_offset(0);
    let dom: i64 = day.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    let midnight = at.as_millis().div_euclid(DAY) * DAY;
    Timestamp::from_millis(midnight - (dom - 1) * DAY)
}

impl Krake {
    /// This month's response times for the workspaces `actor` sees (or one of them).
    pub async fn response_stats(
        &self,
        actor: &Actor,
        workspace: Option<&WorkspaceSlug>,
    ) -> Result<Vec<ResponseStats>, RepoError> {
        let since = month_start(self.clock.now());
        let times: Vec<ResponseTime> = self
            .inbox
            .response_times(since)
            .await?
            .into_iter()
            .filter(|t| actor.can_see(&t.workspace))
            .filter(|t| workspace.is_none_or(|w| &t.workspace == w))
            .collect();
        Ok(summarise(&times))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ws: &str, kind: ThreadKind, secs: u64) -> ResponseTime {
        ResponseTime {
            workspace: WorkspaceSlug::parse(ws).unwrap_or_else(|_| unreachable!()),
            kind,
            waited: Duration::from_secs(secs),
        }
    }

    #[test]
    fn median_and_p95_per_workspace_and_kind() {
        let mut times: Vec<ResponseTime> = (1..=20)
            .map(|i| t("lunavo", ThreadKind::Approval, i * 60))
            .collect();
        times.push(t("monarch", ThreadKind::Question, 30));
        let s = summarise(&times);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].workspace.as_str(), "lunavo");
        assert_eq!(s[0].count, 20);
        assert_eq!(s[0].median, Duration::from_secs(10 * 60));
        assert_eq!(s[0].p95, Duration::from_secs(19 * 60));
        assert_eq!(
            (s[1].count, s[1].median, s[1].p95),
            (1, Duration::from_secs(30), Duration::from_secs(30))
        );
        assert!(summarise(&[]).is_empty());
    }

    #[test]
    fn a_month_starts_at_its_first_midnight_utc() {
        // 2026-12-06 23:02:47 UTC → 2026-12-01 00:00:00 UTC.
        assert_eq!(
            month_start(Timestamp::from_millis(1_796_598_167_000)).as_millis(),
            1_796_083_200_000
        );
        assert_eq!(
            month_start(Timestamp::from_millis(1_796_083_200_000)).as_millis(),
            1_796_083_200_000
        );
    }
}

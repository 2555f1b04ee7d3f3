//! History as a user walks it: paged by cursor, filtered and searched,
//! counted, and pruned. Expected rows come from the test's own record of
//! what it wrote, never from the store's answer to another query.

use chrono::{DateTime, Duration, TimeZone, Utc};
use countersign_model::{
    AllowedDecision, DecisionDraft, Delivery, Kind, NewAccount, ObservedRequest, Outcome, Platform,
    Request, Resolution, SecretStoreKind, Status,
};
use countersign_store::{DecisionUpdate, HistoryCursor, HistoryQuery, Prune, Store};
use rusqlite::params;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::Path;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn open(dir: &Path) -> Store {
    Store::open(&dir.join("countersign.sqlite3")).unwrap()
}

fn account(store: &Store, name: &str, platform: Platform) -> i64 {
    store
        .add_account(
            &NewAccount {
                name: name.into(),
                platform,
                base_url: "http://127.0.0.1:1".into(),
                reviewer: "dana".into(),
                secret_store: SecretStoreKind::None,
                settings: json!({}),
            },
            "ref",
            t0(),
        )
        .unwrap()
        .id
}

fn observed(remote_id: &str, title: &str) -> ObservedRequest {
    ObservedRequest {
        remote_id: remote_id.into(),
        route: json!({"workspace_id": "ws"}),
        kind: Kind::Approval,
        title: title.into(),
        action: "deploy".into(),
        arguments: json!({"target": remote_id}),
        description: None,
        agent: Some("Release Manager".into()),
        tier: None,
        created_at: t0(),
        deadline: None,
        allowed_decisions: vec![AllowedDecision::Approve, AllowedDecision::Deny],
        link: None,
        extra: Default::default(),
        raw: json!({"id": remote_id, "payload": "as the platform sent it"}),
    }
}

fn pending(store: &Store, acc: i64, remote_id: &str) -> i64 {
    store
        .upsert_request(acc, &observed(remote_id, "deploy"), t0())
        .unwrap()
        .request
        .id
}

fn decide(store: &Store, id: i64, outcome: Outcome, at: DateTime<Utc>) -> i64 {
    store
        .record_decision(&DecisionDraft {
            request_id: id,
            outcome,
            comment: None,
            edited_arguments: None,
            response: None,
            decided_by: "dana".into(),
            decided_at: at,
        })
        .unwrap()
        .id
}

fn resolve(store: &Store, id: i64, status: Status, at: Option<DateTime<Utc>>, now: DateTime<Utc>) {
    let remote_id = store.request(id).unwrap().remote_id;
    store
        .apply_resolution(
            id,
            &Resolution {
                remote_id,
                status,
                outcome: Some(status.as_str().into()),
                decided_by: at.map(|_| "someone else".into()),
                decided_at: at,
            },
            now,
        )
        .unwrap()
        .expect("the request was pending, so this is a change");
}

/// Every row of `q`, by following each page's cursor.
fn walk(store: &Store, q: &HistoryQuery, page: u32) -> Vec<i64> {
    let mut q = HistoryQuery {
        limit: Some(page),
        ..q.clone()
    };
    let mut ids = Vec::new();
    loop {
        let p = store.history_page(&q).unwrap();
        assert!(
            p.rows.len() <= page as usize,
            "a page holds at most the rows asked for"
        );
        ids.extend(p.rows.iter().map(|r| r.id));
        match p.next {
            Some(c) => q.before = Some(c),
            None => return ids,
        }
    }
}

mod paging {
    use super::*;

    /// What the test ended, and when: the expected walk, newest first,
    /// ties broken by the higher id.
    fn in_history_order(ended: &HashMap<i64, DateTime<Utc>>) -> Vec<i64> {
        let mut v: Vec<(DateTime<Utc>, i64)> = ended.iter().map(|(id, at)| (*at, *id)).collect();
        v.sort_by(|a, b| b.cmp(a));
        v.into_iter().map(|(_, id)| id).collect()
    }

    #[test]
    fn a_cursor_walk_meets_every_ended_request_once_in_order_while_others_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let acc = account(&store, "prod", Platform::Molecule);
        let ids: Vec<i64> = (0..60)
            .map(|i| pending(&store, acc, &format!("r{i}")))
            .collect();
        // 45 end, four at a time at the same moment (ties that straddle
        // page boundaries), some decided here, some on the platform; whole
        // and fractional seconds both, as the store writes them.
        let mut ended = HashMap::new();
        for (i, &id) in ids[..45].iter().enumerate() {
            let at = t0() + Duration::milliseconds((i as i64 / 4) * 1_500);
            match i % 3 {
                0 => {
                    decide(&store, id, Outcome::Approve, at);
                }
                1 => {
                    decide(&store, id, Outcome::Deny, at);
                }
                _ => resolve(&store, id, Status::ResolvedElsewhere, Some(at), at),
            }
            ended.insert(id, at);
        }
        let mut waiting = ids[45..].to_vec();
        let walk_started = t0() + Duration::hours(1);

        let mut q = HistoryQuery {
            limit: Some(7),
            ..Default::default()
        };
        let mut seen: Vec<i64> = Vec::new();
        let mut late = Vec::new();
        let mut long_ago = Vec::new();
        let mut pages = 0;
        loop {
            let p = store.history_page(&q).unwrap();
            pages += 1;
            seen.extend(p.rows.iter().map(|r| r.id));
            // Between pages: one request is decided now (after every row
            // the walk holds), one is reported ended by its platform long
            // ago (before all of them), and a row already seen changes.
            if let Some(id) = waiting.pop() {
                decide(
                    &store,
                    id,
                    Outcome::Approve,
                    walk_started + Duration::seconds(pages),
                );
                late.push(id);
            }
            if let Some(id) = waiting.pop() {
                // Each further back than the last, so behind the cursor.
                let at = t0() - Duration::days(30) - Duration::seconds(pages);
                resolve(&store, id, Status::Expired, Some(at), walk_started);
                long_ago.push((id, at));
            }
            if let Some(&first) = seen.first() {
                // Approved here, then the platform credits someone else.
                store
                    .apply_resolution(
                        first,
                        &Resolution {
                            remote_id: store.request(first).unwrap().remote_id,
                            status: Status::ResolvedElsewhere,
                            outcome: Some(format!("changed after page {pages}")),
                            decided_by: Some("lee".into()),
                            decided_at: Some(walk_started + Duration::seconds(pages)),
                        },
                        walk_started,
                    )
                    .unwrap();
            }
            match p.next {
                Some(c) => q.before = Some(c),
                None => break,
            }
        }

        let unique: HashSet<i64> = seen.iter().copied().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "no row may come twice in one walk, even one that changed after it was shown: {seen:?}"
        );
        for id in &late {
            assert!(
                !seen.contains(id),
                "request {id} ended after the walk began, newer than its position, so the walk \
                 (which goes back in time) has already passed where it sorts"
            );
        }
        let mut want = ended.clone();
        want.extend(long_ago.iter().copied());
        assert_eq!(
            seen,
            in_history_order(&want),
            "every request that ended before the walk, plus those reported as ended long ago \
             during it (they sort after the walk's position), exactly once, newest first, \
             ties by id"
        );
        assert!(
            pages >= 8,
            "the walk spans many pages, so cursors were really followed ({pages})"
        );

        // A fresh walk afterwards shows what ended during the first one.
        want.extend(
            late.iter()
                .map(|&id| (id, store.request(id).unwrap().decided_at.unwrap())),
        );
        assert_eq!(
            walk(&store, &HistoryQuery::default(), 5),
            in_history_order(&want),
            "a later walk shows every ended request, the late ones first"
        );
    }

    #[test]
    fn a_walk_by_printed_cursors_passes_requests_a_platform_dated_far_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let acc = account(&store, "prod", Platform::Molecule);
        let ids: Vec<i64> = (0..6)
            .map(|i| pending(&store, acc, &format!("r{i}")))
            .collect();
        // A platform's clock (or its epoch unit) can be far off.
        let far = [
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 1, 0, 0, 0).unwrap(),
        ];
        resolve(
            &store,
            ids[1],
            Status::ResolvedElsewhere,
            Some(far[0]),
            t0(),
        );
        resolve(
            &store,
            ids[4],
            Status::ResolvedElsewhere,
            Some(far[1]),
            t0(),
        );
        for i in [0, 2, 3, 5] {
            decide(
                &store,
                ids[i],
                Outcome::Approve,
                t0() + Duration::seconds(i as i64),
            );
        }
        let mut q = HistoryQuery {
            limit: Some(1),
            ..Default::default()
        };
        let mut seen = Vec::new();
        loop {
            let p = store.history_page(&q).unwrap();
            seen.extend(p.rows.iter().map(|r| r.id));
            let Some(next) = p.next else { break };
            // As the CLI and the app pass it on: printed, then parsed.
            let printed = next.to_string();
            q.before =
                Some(printed.parse().unwrap_or_else(|e| {
                    panic!("the cursor a page printed must be taken back: {e}")
                }));
        }
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(
            sorted, ids,
            "a walk one row a page, by printed cursors, meets every ended request once, \
             those dated far off too (seen {seen:?})"
        );
    }

    #[test]
    fn ties_on_when_they_ended_are_broken_by_id_across_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let acc = account(&store, "prod", Platform::Molecule);
        let ids: Vec<i64> = (0..11)
            .map(|i| pending(&store, acc, &format!("r{i}")))
            .collect();
        for &id in &ids {
            decide(&store, id, Outcome::Approve, t0());
        }
        let want: Vec<i64> = ids.iter().rev().copied().collect();
        for page in [1, 2, 3, 10, 11, 12] {
            assert_eq!(
                walk(&store, &HistoryQuery::default(), page),
                want,
                "eleven requests ending in the same instant come highest id first, each once, \
                 whatever the page size ({page})"
            );
        }
    }

    #[test]
    fn a_walk_cut_short_by_its_limit_says_where_to_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let acc = account(&store, "prod", Platform::Molecule);
        let ids: Vec<i64> = (0..30)
            .map(|i| pending(&store, acc, &format!("r{i}")))
            .collect();
        for (i, &id) in ids.iter().enumerate() {
            decide(
                &store,
                id,
                Outcome::Approve,
                t0() + Duration::seconds(i as i64),
            );
        }
        let q = HistoryQuery {
            limit: Some(12),
            ..Default::default()
        };
        let mut first = Vec::new();
        let next = store
            .for_each_history(&q, |r| {
                first.push(r.id);
                ControlFlow::Continue(())
            })
            .unwrap()
            .expect("more rows follow the twelfth");
        let rest = store
            .history(&HistoryQuery {
                before: Some(next),
                ..Default::default()
            })
            .unwrap();
        let mut all = first.clone();
        all.extend(rest.iter().map(|r| r.id));
        assert_eq!(first.len(), 12, "a limit of 12 gives 12 rows");
        assert_eq!(
            all,
            ids.iter().rev().copied().collect::<Vec<_>>(),
            "going on from the returned cursor gives the rest, nothing skipped or repeated"
        );
        let none = store
            .for_each_history(
                &HistoryQuery {
                    limit: Some(100),
                    ..Default::default()
                },
                |_| ControlFlow::Continue(()),
            )
            .unwrap();
        assert_eq!(
            none, None,
            "a walk that ran out of rows has nowhere to go on"
        );
    }
}

mod filters {
    use super::*;

    const COMMON: &str = "rollback";
    const RARE: &str = "zeppelin";
    /// Ended rows; every one but each 20th says `COMMON`, so its hits are
    /// above the 20,000 where search walks history instead of sorting hits.
    const ENDED: usize = 21_600;
    const PENDING: usize = 300;
    const ACCOUNTS: &[(&str, Platform)] = &[
        ("prod", Platform::Molecule),
        ("stage", Platform::Molecule),
        ("ops", Platform::Clawith),
    ];
    const AGENTS: &[&str] = &["deployer", "janitor", "auditor", "Release Manager"];
    const ENDED_STATUSES: &[Status] = &[
        Status::Approved,
        Status::Denied,
        Status::Expired,
        Status::ResolvedElsewhere,
        Status::Cancelled,
    ];

    /// What the test wrote for one request.
    struct Row {
        id: i64,
        account: usize,
        agent: &'static str,
        status: Status,
        /// `None` while pending.
        ended_at: Option<DateTime<Utc>>,
        words: Vec<&'static str>,
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// A store of `ENDED` ended and `PENDING` pending requests written in
    /// one transaction, through SQL so the schema's triggers set `ended_at`,
    /// the counter and the full-text index; times bound by rusqlite, so they
    /// are text in the same format the store binds when it compares.
    fn fill(dir: &Path) -> (Store, Vec<Row>) {
        let store = open(dir);
        let account_ids: Vec<i64> = ACCOUNTS
            .iter()
            .map(|(name, platform)| account(&store, name, *platform))
            .collect();
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut rows = Vec::with_capacity(ENDED + PENDING);
        let mut conn = rusqlite::Connection::open(dir.join("countersign.sqlite3")).unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO requests (id, account_id, remote_id, route, kind, title, action,
                        arguments, agent, created_at, allowed_decisions, status, decided_by,
                        decided_at, raw, first_seen_at, updated_at)
                     VALUES (?1, ?2, ?3, '{}', 'approval', ?4, 'deploy', ?5, ?6, ?7,
                        '[\"approve\",\"deny\"]', ?8, ?9, ?10, '{}', ?7, ?11)",
                )
                .unwrap();
            for n in 0..ENDED + PENDING {
                let id = n as i64 + 1;
                let account = rng.below(ACCOUNTS.len());
                let agent = AGENTS[rng.below(AGENTS.len())];
                let is_pending = n >= ENDED;
                let status = if is_pending {
                    Status::Pending
                } else {
                    ENDED_STATUSES[rng.below(ENDED_STATUSES.len())]
                };
                // About three rows per instant (ties); every other instant
                // on a whole second. Ids are not in time order.
                let slot = rng.below(ENDED / 3) as i64;
                let ended_at = (!is_pending).then(|| t0() + Duration::milliseconds(slot * 1_500));
                let mut words = vec!["deploy", "service"];
                if n % 20 != 7 {
                    words.push(COMMON);
                }
                if n % 997 == 13 {
                    words.push(RARE);
                }
                let decided = matches!(
                    status,
                    Status::Approved | Status::Denied | Status::ResolvedElsewhere
                );
                ins.execute(params![
                    id,
                    account_ids[account],
                    format!("r{n}"),
                    words.join(" "),
                    json!({"note": format!("item {n}")}),
                    agent,
                    t0() - Duration::days(1),
                    status.as_str(),
                    decided.then_some("dana"),
                    if decided { ended_at } else { None },
                    ended_at.unwrap_or(t0() - Duration::days(1)),
                ])
                .unwrap();
                rows.push(Row {
                    id,
                    account,
                    agent,
                    status,
                    ended_at,
                    words,
                });
            }
        }
        tx.commit().unwrap();
        (store, rows)
    }

    /// The rows `q` selects, by the test's own record, newest first.
    fn expected(rows: &[Row], q: &HistoryQuery) -> Vec<i64> {
        let terms: Vec<String> = q
            .search
            .iter()
            .flat_map(|s| s.split(|c: char| !c.is_alphanumeric()))
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let mut hits: Vec<(DateTime<Utc>, i64)> = rows
            .iter()
            .filter_map(|r| {
                let at = r.ended_at?;
                let (name, platform) = ACCOUNTS[r.account];
                let keep = (q.statuses.is_empty() || q.statuses.contains(&r.status))
                    && q.account.as_deref().is_none_or(|a| a == name)
                    && q.platform.is_none_or(|p| p == platform)
                    && q.agent.as_deref().is_none_or(|a| a == r.agent)
                    && q.since.is_none_or(|s| at >= s)
                    && q.until.is_none_or(|u| at < u)
                    && q.before.is_none_or(|c| (at, r.id) < (c.ended_at, c.id))
                    // Every word a prefix of some word of the row, as the
                    // search promises (`push` finds `pushed`).
                    && terms.iter().all(|t| {
                        r.words
                            .iter()
                            .chain(std::iter::once(&r.agent))
                            .flat_map(|w| w.split_whitespace())
                            .any(|w| w.to_lowercase().starts_with(t.as_str()))
                    });
                keep.then_some((at, r.id))
            })
            .collect();
        hits.sort_by(|a, b| b.cmp(a));
        hits.into_iter().map(|(_, id)| id).collect()
    }

    #[test]
    fn filters_and_search_combine_with_paging_on_both_search_paths() {
        let dir = tempfile::tempdir().unwrap();
        let (store, rows) = fill(dir.path());
        assert_eq!(
            store.history_total().unwrap(),
            ENDED as i64,
            "rows written ended count as history, pending ones do not"
        );
        let window = (
            t0() + Duration::milliseconds(1_500 * 1_000),
            t0() + Duration::milliseconds(1_500 * 4_000),
        );
        let q = HistoryQuery::default;
        let cases: Vec<(&str, HistoryQuery, u32)> = vec![
            ("no filter", q(), 997),
            (
                "status and agent",
                HistoryQuery {
                    statuses: vec![Status::Denied],
                    agent: Some("janitor".into()),
                    ..q()
                },
                61,
            ),
            (
                "two statuses, one platform of two accounts, a time window",
                HistoryQuery {
                    statuses: vec![Status::Expired, Status::Cancelled],
                    platform: Some(Platform::Molecule),
                    since: Some(window.0),
                    until: Some(window.1),
                    ..q()
                },
                50,
            ),
            (
                "common word (dense), one account",
                HistoryQuery {
                    search: Some(COMMON.into()),
                    account: Some("ops".into()),
                    ..q()
                },
                499,
            ),
            (
                "common word (dense), status, agent, window",
                HistoryQuery {
                    search: Some(COMMON.into()),
                    statuses: vec![Status::Approved],
                    agent: Some("auditor".into()),
                    since: Some(window.0),
                    until: Some(window.1),
                    ..q()
                },
                33,
            ),
            (
                "a prefix of the common word (dense only by its prefix hits), platform",
                HistoryQuery {
                    search: Some("Rollb".into()),
                    platform: Some(Platform::Clawith),
                    statuses: vec![Status::ResolvedElsewhere],
                    ..q()
                },
                128,
            ),
            (
                "rare word (sparse)",
                HistoryQuery {
                    search: Some(RARE.into()),
                    ..q()
                },
                4,
            ),
            (
                "rare word (sparse), one platform, since",
                HistoryQuery {
                    search: Some(format!("{RARE}!")),
                    platform: Some(Platform::Molecule),
                    since: Some(window.0),
                    ..q()
                },
                2,
            ),
            (
                "rare and common word together (sparse: few rows have both)",
                HistoryQuery {
                    search: Some(format!("{COMMON} zepp")),
                    ..q()
                },
                3,
            ),
            (
                "a word every row has (dense), an account and an agent",
                HistoryQuery {
                    search: Some("service".into()),
                    account: Some("stage".into()),
                    agent: Some("Release Manager".into()),
                    ..q()
                },
                211,
            ),
            (
                "an account that does not exist",
                HistoryQuery {
                    search: Some(COMMON.into()),
                    account: Some("nobody".into()),
                    ..q()
                },
                10,
            ),
        ];
        for (what, query, page) in cases {
            let want = expected(&rows, &query);
            let got = walk(&store, &query, page);
            assert_eq!(
                got.len(),
                want.len(),
                "{what}: the pages together hold exactly the rows the filters select"
            );
            assert!(
                got == want,
                "{what}: the union of pages is the filtered set, each row once, newest first \
                 (first difference at {:?})",
                got.iter().zip(&want).position(|(a, b)| a != b)
            );
            // A walk starting from a cursor in the middle agrees too.
            if want.len() > 2 {
                let mid = want[want.len() / 2];
                let at = rows[mid as usize - 1].ended_at.unwrap();
                let from = HistoryQuery {
                    before: Some(HistoryCursor {
                        ended_at: at,
                        id: mid,
                    }),
                    ..query.clone()
                };
                assert_eq!(
                    walk(&store, &from, page),
                    want[want.len() / 2 + 1..].to_vec(),
                    "{what}: a walk from a cursor holds exactly the rows after it"
                );
            }
            if what.contains("dense") || what.contains("no filter") {
                assert!(
                    want.len() > 100,
                    "{what}: the case selects many rows, so paging is really exercised ({})",
                    want.len()
                );
            }
        }
        let dense = rows.iter().filter(|r| r.words.contains(&COMMON)).count();
        assert!(
            dense > 20_000,
            "the common word has more hits ({dense}) than search sorts alone, so its cases \
             walk history"
        );
        let sparse = rows.iter().filter(|r| r.words.contains(&RARE)).count();
        assert!(
            (5..100).contains(&sparse),
            "the rare word has a few hits ({sparse}), so its cases sort them alone"
        );
    }
}

mod total {
    use super::*;

    #[test]
    fn the_history_total_moves_when_a_request_ends_reopens_or_is_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let acc = account(&store, "prod", Platform::Molecule);
        let ids: Vec<i64> = (0..6)
            .map(|i| pending(&store, acc, &format!("r{i}")))
            .collect();
        let total = || store.history_total().unwrap();
        assert_eq!(total(), 0, "pending requests are not history");

        let d0 = decide(&store, ids[0], Outcome::Approve, t0());
        decide(&store, ids[1], Outcome::Deny, t0() + Duration::seconds(1));
        resolve(
            &store,
            ids[2],
            Status::Expired,
            None,
            t0() + Duration::seconds(2),
        );
        resolve(
            &store,
            ids[3],
            Status::Cancelled,
            None,
            t0() + Duration::days(10),
        );
        assert_eq!(total(), 4, "two decided, one expired, one cancelled");

        resolve(
            &store,
            ids[2],
            Status::ResolvedElsewhere,
            Some(t0()),
            t0() + Duration::seconds(3),
        );
        assert_eq!(
            total(),
            4,
            "a request that was already history and changes how it ended is still one entry"
        );

        store
            .update_decision(
                d0,
                &DecisionUpdate::Failed {
                    error: "not allowed".into(),
                    reopen: true,
                },
                t0(),
            )
            .unwrap();
        assert_eq!(
            total(),
            3,
            "a refused decision that puts its request back in the inbox takes it out of history"
        );
        assert_eq!(
            store.history(&HistoryQuery::default()).unwrap().len() as i64,
            total(),
            "the counter agrees with the rows history lists"
        );

        // ids[1]'s decision is still queued: prune keeps it.
        let p = Prune {
            before: t0() + Duration::days(1),
            keep_decisions: false,
        };
        assert_eq!(store.prune_count(&p).unwrap(), 1, "only the expired one");
        store.prune(&p, t0() + Duration::days(2)).unwrap();
        assert_eq!(total(), 2, "a pruned request is no longer history");
        store
            .prune(
                &Prune {
                    before: t0() + Duration::days(30),
                    keep_decisions: true,
                },
                t0() + Duration::days(31),
            )
            .unwrap();
        assert_eq!(
            total(),
            2,
            "dropping payloads keeps the requests, so history keeps counting them"
        );
        assert_eq!(
            store.history(&HistoryQuery::default()).unwrap().len() as i64,
            total(),
            "the counter still agrees with the rows history lists"
        );
    }
}

mod prune {
    use super::*;

    /// One request in each state prune must tell apart, all of them
    /// started long before the cutoff.
    struct Cases {
        store: Store,
        pending: i64,
        reopened: i64,
        queued: i64,
        sent: i64,
        confirmed: i64,
        failed: i64,
        expired: i64,
        recent: i64,
    }

    fn cutoff() -> DateTime<Utc> {
        t0() + Duration::days(5)
    }

    fn cases(dir: &Path) -> Cases {
        let store = open(dir);
        let acc = account(&store, "prod", Platform::Molecule);
        let other = account(&store, "ops", Platform::Clawith);
        let new = |name: &str| pending(&store, acc, name);
        let (p, reopened, queued, confirmed, failed, expired, recent) = (
            new("pending"),
            new("reopened"),
            new("queued"),
            new("confirmed"),
            new("failed"),
            new("expired"),
            new("recent"),
        );
        let sent = pending(&store, other, "sent");
        let at = t0() + Duration::hours(1);
        decide(&store, queued, Outcome::Deny, at);
        let d = decide(&store, sent, Outcome::Approve, at);
        let claimed = store
            .claim_due(other, None, at, Duration::minutes(5), true)
            .unwrap();
        assert_eq!(
            claimed.iter().map(|c| c.decision.id).collect::<Vec<_>>(),
            vec![d],
            "the sent one is being delivered"
        );
        let d = decide(&store, confirmed, Outcome::Approve, at);
        store
            .update_decision(d, &DecisionUpdate::Confirmed, at)
            .unwrap();
        let d = decide(&store, failed, Outcome::Approve, at);
        store
            .update_decision(
                d,
                &DecisionUpdate::Failed {
                    error: "gone".into(),
                    reopen: false,
                },
                at,
            )
            .unwrap();
        let d = decide(&store, reopened, Outcome::Approve, at);
        store
            .update_decision(
                d,
                &DecisionUpdate::Failed {
                    error: "not allowed any more".into(),
                    reopen: true,
                },
                at,
            )
            .unwrap();
        resolve(&store, expired, Status::Expired, None, at);
        let d = decide(
            &store,
            recent,
            Outcome::Approve,
            cutoff() + Duration::hours(1),
        );
        store
            .update_decision(d, &DecisionUpdate::Confirmed, cutoff())
            .unwrap();
        Cases {
            store,
            pending: p,
            reopened,
            queued,
            sent,
            confirmed,
            failed,
            expired,
            recent,
        }
    }

    fn raw(store: &Store, id: i64) -> serde_json::Value {
        store.request(id).unwrap().raw
    }

    fn exists(store: &Store, id: i64) -> bool {
        store.request(id).is_ok()
    }

    #[test]
    fn prune_deletes_only_what_ended_before_the_cutoff_with_nothing_on_its_way() {
        let dir = tempfile::tempdir().unwrap();
        let c = cases(dir.path());
        let s = &c.store;
        let p = Prune {
            before: cutoff(),
            keep_decisions: false,
        };
        assert_eq!(
            s.prune_count(&p).unwrap(),
            3,
            "confirmed, failed and expired ended before the cutoff with nothing to deliver"
        );
        let done = s.prune(&p, cutoff() + Duration::days(1)).unwrap();
        assert_eq!(
            done.requests, 3,
            "prune does what prune_count said it would"
        );
        assert_eq!(done.payloads, 0, "nothing was only emptied");
        for (what, id) in [
            ("confirmed", c.confirmed),
            ("failed", c.failed),
            ("expired", c.expired),
        ] {
            assert!(!exists(s, id), "the {what} request ended long ago: it goes");
            assert!(
                s.decisions_for(id).unwrap().is_empty(),
                "and the {what} request's decisions with it"
            );
        }
        for (what, id) in [
            ("pending", c.pending),
            ("reopened", c.reopened),
            ("queued", c.queued),
            ("sent", c.sent),
            ("recent", c.recent),
        ] {
            assert!(
                exists(s, id),
                "the {what} request stays: it waits for a decision, has one on its way, or \
                 ended after the cutoff"
            );
        }
        for (what, id, delivery) in [
            ("queued", c.queued, Delivery::Queued),
            ("sent", c.sent, Delivery::Sent),
        ] {
            assert_eq!(
                s.open_decision_for(id).unwrap().map(|d| d.delivery),
                Some(delivery),
                "the {what} decision is still in the outbox, so it still reaches its platform"
            );
            assert_eq!(
                raw(s, id)["payload"],
                "as the platform sent it",
                "the {what} request keeps its payload: the connector checks against it"
            );
        }
        assert_eq!(
            s.prune_count(&p).unwrap(),
            0,
            "after a prune nothing is left to prune"
        );

        // Once the queued decision is delivered, its request may go.
        let d = s.open_decision_for(c.queued).unwrap().unwrap();
        s.update_decision(d.id, &DecisionUpdate::Confirmed, cutoff())
            .unwrap();
        assert_eq!(
            s.prune_count(&p).unwrap(),
            1,
            "the delivered one is prunable now"
        );
        assert_eq!(s.prune(&p, cutoff()).unwrap().requests, 1, "and goes");
        assert!(!exists(s, c.queued), "the delivered request is gone");
    }

    #[test]
    fn keep_decisions_drops_only_raw_payloads_and_never_touches_what_is_in_play() {
        let dir = tempfile::tempdir().unwrap();
        let c = cases(dir.path());
        let s = &c.store;
        let p = Prune {
            before: cutoff(),
            keep_decisions: true,
        };
        let before: HashMap<i64, Request> = [
            c.pending,
            c.reopened,
            c.queued,
            c.sent,
            c.confirmed,
            c.failed,
            c.expired,
            c.recent,
        ]
        .into_iter()
        .map(|id| (id, s.request(id).unwrap()))
        .collect();
        let total = s.history_total().unwrap();
        assert_eq!(
            s.prune_count(&p).unwrap(),
            3,
            "confirmed, failed and expired would lose their payloads"
        );
        let now = cutoff() + Duration::days(1);
        let done = s.prune(&p, now).unwrap();
        assert_eq!(
            (done.requests, done.payloads),
            (0, 3),
            "prune does what prune_count said: three payloads, no request deleted"
        );
        for (what, id) in [
            ("confirmed", c.confirmed),
            ("failed", c.failed),
            ("expired", c.expired),
        ] {
            let after = s.request(id).unwrap();
            assert!(
                after.raw.get("payload").is_none() && after.raw.get("pruned").is_some(),
                "the {what} request's raw payload is dropped and says when: {}",
                after.raw
            );
            let was = &before[&id];
            assert_eq!(
                (
                    &after.status,
                    &after.title,
                    &after.decided_by,
                    &after.decided_at
                ),
                (&was.status, &was.title, &was.decided_by, &was.decided_at),
                "the {what} request still shows what it was and how it ended"
            );
        }
        for id in [c.confirmed, c.failed] {
            assert_eq!(
                s.decisions_for(id).unwrap().len(),
                1,
                "the decision made on it stays"
            );
        }
        for (what, id) in [
            ("pending", c.pending),
            ("reopened", c.reopened),
            ("queued", c.queued),
            ("sent", c.sent),
            ("recent", c.recent),
        ] {
            assert_eq!(
                s.request(id).unwrap(),
                before[&id],
                "the {what} request is untouched: it is in play or ended after the cutoff"
            );
        }
        assert_eq!(s.history_total().unwrap(), total, "no request left history");
        assert_eq!(
            s.prune_count(&p).unwrap(),
            0,
            "payloads already dropped are not counted again"
        );
        assert_eq!(
            s.prune(&p, now).unwrap().payloads,
            0,
            "and a second prune drops nothing more"
        );
        // A full prune after that still deletes the emptied requests.
        let full = Prune {
            before: cutoff(),
            keep_decisions: false,
        };
        assert_eq!(
            s.prune_count(&full).unwrap(),
            3,
            "emptied requests can still be deleted"
        );
        assert_eq!(s.prune(&full, now).unwrap().requests, 3, "and are");
    }
}

mod cursor {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_malformed_cursor_is_an_error_not_a_panic() {
        for s in [
            "",
            "_",
            "nope",
            "12",
            "2026-12-07T09:50:10Z",
            "2026-12-07T09:50:10Z_",
            "2026-12-07T09:50:10Z_-4",
            "2026-12-07T09:50:10Z_1.5",
            "2026-12-07T09:50:10Z_99999999999999999999999",
            "2026-12-07 09:50:10_4",
            "2026-13-07T09:50:10Z_4",
            "2026-12-07T25:50:10Z_4",
            "2026-12-07T09:50:10_4",
            "_2026-12-07T09:50:10Z",
            "2026-12-07T09:50:10Z_4_",
            "2026-12-07T09:50:10Z__4",
            "2026-12-07T09:50:10.0000000000000000001Z_x",
            "ümlaut_🙂",
        ] {
            let parsed = std::panic::catch_unwind(|| s.parse::<HistoryCursor>());
            let Ok(parsed) = parsed else {
                panic!("parsing {s:?} panicked; a bad --before must be an error");
            };
            let e = parsed
                .expect_err(&format!("{s:?} is no cursor a page prints, yet it parsed"))
                .to_string();
            assert!(
                e.contains("not a history cursor"),
                "the error says what was wrong: {e}"
            );
        }
        let long = "x".repeat(10_000);
        let e = long.parse::<HistoryCursor>().unwrap_err().to_string();
        assert!(
            e.len() < 300,
            "a huge bad cursor is quoted shortened, so the error stays one readable line"
        );
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused(s in ".*") {
            let _ = s.parse::<HistoryCursor>();
        }

        /// Any instant, years before 0 and after 9999 too: `ended_at` is
        /// when a platform said a request was decided, and its clock may
        /// say anything.
        #[test]
        fn a_printed_cursor_parses_back_to_the_same_place(
            secs in DateTime::<Utc>::MIN_UTC.timestamp()..DateTime::<Utc>::MAX_UTC.timestamp(),
            nanos in 0u32..1_000_000_000,
            id in 0i64..i64::MAX,
        ) {
            let c = HistoryCursor {
                ended_at: Utc.timestamp_opt(secs, nanos).unwrap(),
                id,
            };
            prop_assert_eq!(c.to_string().parse::<HistoryCursor>(), Ok(c));
        }
    }
}

//! The schema, as an append-only list of migrations. A shipped migration is
//! never edited: change the schema by adding one at the end.

use rusqlite_migration::{Migrations, M};

const V1_INITIAL: &str = r#"
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    platform      TEXT NOT NULL,
    base_url      TEXT NOT NULL,
    reviewer      TEXT NOT NULL,
    secret_store  TEXT NOT NULL,
    secret_ref    TEXT NOT NULL,
    settings      TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    -- accounts are retired, not deleted, so their history stays readable
    removed_at    TEXT
);
CREATE UNIQUE INDEX accounts_active_name ON accounts(name) WHERE removed_at IS NULL;

CREATE TABLE account_health (
    account_id    INTEGER PRIMARY KEY REFERENCES accounts(id),
    state         TEXT NOT NULL,
    backoff_until TEXT,
    last_error    TEXT,
    last_sync_at  TEXT,
    updated_at    TEXT NOT NULL
);

CREATE TABLE requests (
    id                INTEGER PRIMARY KEY,
    account_id        INTEGER NOT NULL REFERENCES accounts(id),
    remote_id         TEXT NOT NULL,
    route             TEXT NOT NULL,
    kind              TEXT NOT NULL,
    title             TEXT NOT NULL,
    action            TEXT NOT NULL,
    arguments         TEXT NOT NULL,
    description       TEXT,
    agent             TEXT,
    tier              TEXT,
    created_at        TEXT NOT NULL,
    deadline          TEXT,
    allowed_decisions TEXT NOT NULL,
    link              TEXT,
    status            TEXT NOT NULL,
    outcome           TEXT,
    decided_by        TEXT,
    decided_at        TEXT,
    comment           TEXT,
    raw               TEXT NOT NULL,
    first_seen_at     TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (account_id, remote_id)
);
CREATE INDEX requests_status ON requests(status, deadline, created_at);
CREATE INDEX requests_agent ON requests(agent);

CREATE VIRTUAL TABLE requests_fts USING fts5(
    title, action, arguments, description, agent, comment,
    content = 'requests', content_rowid = 'id'
);
CREATE TRIGGER requests_fts_insert AFTER INSERT ON requests BEGIN
    INSERT INTO requests_fts(rowid, title, action, arguments, description, agent, comment)
    VALUES (new.id, new.title, new.action, new.arguments, new.description, new.agent, new.comment);
END;
CREATE TRIGGER requests_fts_delete AFTER DELETE ON requests BEGIN
    INSERT INTO requests_fts(requests_fts, rowid, title, action, arguments, description, agent, comment)
    VALUES ('delete', old.id, old.title, old.action, old.arguments, old.description, old.agent, old.comment);
END;
CREATE TRIGGER requests_fts_update AFTER UPDATE OF title, action, arguments, description, agent, comment ON requests BEGIN
    INSERT INTO requests_fts(requests_fts, rowid, title, action, arguments, description, agent, comment)
    VALUES ('delete', old.id, old.title, old.action, old.arguments, old.description, old.agent, old.comment);
    INSERT INTO requests_fts(rowid, title, action, arguments, description, agent, comment)
    VALUES (new.id, new.title, new.action, new.arguments, new.description, new.agent, new.comment);
END;

CREATE TABLE decisions (
    id               INTEGER PRIMARY KEY,
    request_id       INTEGER NOT NULL REFERENCES requests(id),
    outcome          TEXT NOT NULL,
    comment          TEXT,
    edited_arguments TEXT,
    response         TEXT,
    decided_by       TEXT NOT NULL,
    decided_at       TEXT NOT NULL,
    delivery         TEXT NOT NULL,
    error            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    -- while `sent`: when another sender may take the decision over
    lease_until      TEXT,
    confirmed_at     TEXT
);
CREATE INDEX decisions_outbox ON decisions(delivery, next_attempt_at);
CREATE INDEX decisions_request ON decisions(request_id);

CREATE TABLE activity (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    remote_id   TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    title       TEXT NOT NULL,
    agent       TEXT,
    details     TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    read        INTEGER NOT NULL DEFAULT 0,
    raw         TEXT NOT NULL,
    UNIQUE (account_id, remote_id)
);
CREATE INDEX activity_time ON activity(occurred_at);
"#;

/// Activity items can name the request they report on (Clawith's tool
/// results, Molecule's escalations), so its history entry can show them.
const V2_ACTIVITY_REQUEST: &str = r#"
ALTER TABLE activity ADD COLUMN request_remote_id TEXT;
CREATE INDEX activity_request ON activity(account_id, request_remote_id);
"#;

/// What a platform says beyond the common fields (quorum progress,
/// proposals, read-only reasons, answer schemas, facts), as one JSON object.
const V3_REQUEST_EXTRA: &str = r#"
ALTER TABLE requests ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
"#;

/// What a connector says about its last pass (how many threads it
/// watches), shown on the account's health line. Requests of a group
/// (answered together) are found by their group key.
const V4_HEALTH_NOTE: &str = r#"
ALTER TABLE account_health ADD COLUMN note TEXT;
CREATE INDEX requests_group ON requests(account_id, json_extract(extra, '$.group.key'))
    WHERE json_extract(extra, '$.group.key') IS NOT NULL;
"#;

/// A decision may come back with a note on what the platform did instead
/// (SurfSense running on after a deny). SurfSense asks are now known by
/// their `interrupt_id` too, since a subagent asks again under the same
/// `tool_call_id`: stored asks get the new identity, so a decision waiting
/// on one still finds it.
const V5_DECISION_NOTE_AND_ASK_IDENTITY: &str = r#"
ALTER TABLE decisions ADD COLUMN note TEXT;
UPDATE requests SET remote_id = remote_id || ':' || json_extract(route, '$.interrupt_id')
WHERE account_id IN (SELECT id FROM accounts WHERE platform = 'surfsense')
    AND json_type(route, '$.tool_call_id') = 'text'
    AND json_type(route, '$.interrupt_id') = 'text'
    AND remote_id = json_extract(route, '$.thread_id') || ':' || json_extract(route, '$.tool_call_id');
"#;

/// History is ordered by when a request ended, served by an index instead
/// of sorting every row: `ended_at` is set by a trigger when a request
/// leaves `pending` (to when it was decided, else that moment) and cleared
/// if it comes back; later changes to an ended row do not move it, so a
/// cursor walk sees each row once. Indexes serve the common filters in the
/// same order, and a counter kept by the same triggers says how many
/// there are without counting them.
const V6_HISTORY_ORDER: &str = r#"
ALTER TABLE requests ADD COLUMN ended_at TEXT;
UPDATE requests SET ended_at = COALESCE(decided_at, updated_at) WHERE status != 'pending';
CREATE INDEX requests_history ON requests(ended_at, id) WHERE ended_at IS NOT NULL;
CREATE INDEX requests_history_account ON requests(account_id, ended_at, id) WHERE ended_at IS NOT NULL;
CREATE INDEX requests_history_status ON requests(status, ended_at, id) WHERE ended_at IS NOT NULL;
CREATE INDEX requests_history_agent ON requests(agent, ended_at, id) WHERE ended_at IS NOT NULL;
CREATE TABLE history_count (n INTEGER NOT NULL);
INSERT INTO history_count SELECT COUNT(*) FROM requests WHERE status != 'pending';
CREATE TRIGGER requests_ended_insert AFTER INSERT ON requests
WHEN new.status != 'pending' BEGIN
    UPDATE requests SET ended_at = COALESCE(new.ended_at, new.decided_at, new.updated_at) WHERE id = new.id;
    UPDATE history_count SET n = n + 1;
END;
CREATE TRIGGER requests_ended AFTER UPDATE OF status ON requests
WHEN old.status = 'pending' AND new.status != 'pending' BEGIN
    UPDATE requests SET ended_at = COALESCE(new.decided_at, new.updated_at) WHERE id = new.id;
    UPDATE history_count SET n = n + 1;
END;
CREATE TRIGGER requests_reopened AFTER UPDATE OF status ON requests
WHEN new.status = 'pending' AND old.status != 'pending' BEGIN
    UPDATE requests SET ended_at = NULL WHERE id = new.id;
    UPDATE history_count SET n = n - 1;
END;
CREATE TRIGGER requests_ended_delete AFTER DELETE ON requests
WHEN old.status != 'pending' BEGIN
    UPDATE history_count SET n = n - 1;
END;
"#;

/// A lease names its holder (an open store, see `owner.rs`), so a lease
/// whose holder died is taken over at once instead of when it runs out.
const V7_LEASE_OWNER: &str = "ALTER TABLE decisions ADD COLUMN lease_owner TEXT;";

/// A pending request can be snoozed: out of the inbox list until then.
const V8_SNOOZE: &str = "ALTER TABLE requests ADD COLUMN snoozed_until TEXT;
CREATE INDEX requests_snoozed ON requests(snoozed_until) WHERE snoozed_until IS NOT NULL;";

/// What a request's text hides (bidi controls, invisible characters,
/// mixed-script words), as the warning line shown with it; set on write.
const V9_HIDDEN: &str = "ALTER TABLE requests ADD COLUMN hidden TEXT;";

/// Since when a decision's delivery is *sent, outcome unknown* (see
/// `Decision::unsure_since`); set on the first such failure, kept after.
const V10_DECISION_UNSURE: &str = "ALTER TABLE decisions ADD COLUMN unsure_since TEXT;";

/// Every migration, oldest first.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1_INITIAL),
        M::up(V2_ACTIVITY_REQUEST),
        M::up(V3_REQUEST_EXTRA),
        M::up(V4_HEALTH_NOTE),
        M::up(V5_DECISION_NOTE_AND_ASK_IDENTITY),
        M::up(V6_HISTORY_ORDER),
        M::up(V7_LEASE_OWNER),
        M::up(V8_SNOOZE),
        M::up(V9_HIDDEN),
        M::up(V10_DECISION_UNSURE),
    ])
}

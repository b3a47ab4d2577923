//! Schema migrations, applied in order at open. Never edit a released
//! migration; append a new one.

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // v1
    r#"
CREATE TABLE inbox_batch (
    id           INTEGER PRIMARY KEY,
    account      TEXT    NOT NULL,
    batch_id     BLOB    NOT NULL CHECK (length(batch_id) = 16),
    voucher_count INTEGER NOT NULL CHECK (voucher_count >= 0),
    received_at  INTEGER NOT NULL,
    processed_at INTEGER,
    UNIQUE (account, batch_id)
);
CREATE INDEX inbox_batch_pending ON inbox_batch (id) WHERE processed_at IS NULL;

-- Raw vouchers; deleted when their batch is processed.
CREATE TABLE inbox_voucher (
    batch   INTEGER NOT NULL REFERENCES inbox_batch (id) ON DELETE CASCADE,
    idx     INTEGER NOT NULL,
    voucher BLOB    NOT NULL,
    PRIMARY KEY (batch, idx)
) WITHOUT ROWID;

CREATE TABLE account_counter (
    account     TEXT PRIMARY KEY,
    received    INTEGER NOT NULL DEFAULT 0,
    non_matches INTEGER NOT NULL DEFAULT 0,
    opened      INTEGER NOT NULL DEFAULT 0,
    invalid     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE opened_voucher (
    seq        INTEGER PRIMARY KEY,
    account    TEXT    NOT NULL,
    order_id   BLOB    NOT NULL CHECK (length(order_id) = 16),
    voucher_id BLOB    NOT NULL CHECK (length(voucher_id) = 16),
    payload    BLOB    NOT NULL,
    batch      INTEGER NOT NULL REFERENCES inbox_batch (id),
    UNIQUE (account, order_id, voucher_id)
);
CREATE INDEX opened_voucher_order ON opened_voucher (order_id);

CREATE TABLE account_state (
    account  TEXT NOT NULL,
    order_id BLOB NOT NULL CHECK (length(order_id) = 16),
    state    BLOB NOT NULL,
    PRIMARY KEY (account, order_id)
);
CREATE INDEX account_state_order ON account_state (order_id);

CREATE TABLE case_file (
    id         INTEGER PRIMARY KEY,
    account    TEXT    NOT NULL,
    order_id   BLOB    NOT NULL CHECK (length(order_id) = 16),
    created_at INTEGER NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('open', 'confirmed', 'rejected')),
    reviewer   TEXT,
    reason     TEXT,
    decided_at INTEGER,
    ad_purged  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX case_file_order ON case_file (order_id);

CREATE TABLE case_item (
    case_id    INTEGER NOT NULL REFERENCES case_file (id) ON DELETE CASCADE,
    pos        INTEGER NOT NULL,
    voucher_id BLOB    NOT NULL CHECK (length(voucher_id) = 16),
    ad         BLOB,
    PRIMARY KEY (case_id, voucher_id)
);

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32)
);
"#,
    // v2: a batch's raw vouchers are one length-prefixed blob in its inbox row
    // (see `inbox.rs`), set to NULL (securely deleted) when the batch is
    // processed. `sqlite::migrate` then moves the vouchers of unprocessed v1
    // batches from `inbox_voucher` into the blob and drops that table, in the
    // same transaction (`INBOX_BLOB_MIGRATION`).
    r#"
ALTER TABLE inbox_batch ADD COLUMN vouchers BLOB;
"#,
    // v3: in a file database, an unprocessed batch's blob lives in a spool file
    // (see `spool.rs`) named here, and `vouchers` stays NULL; in-memory
    // databases keep using `vouchers`. Cleared when the batch is processed.
    // Rows written by v2 keep their `vouchers` blob and are read as before.
    r#"
ALTER TABLE inbox_batch ADD COLUMN spool TEXT;
"#,
    // v4: what follows the threshold. `case_file`'s status CHECK widens, which
    // SQLite can only do by rebuilding the table (ids kept; `sqlite::migrate`
    // runs migrations with foreign keys off and checks them before the commit,
    // so the rebuild does not cascade into `case_item`). Then review
    // decisions, the outbox to the Centre, notices and appeals, indicator
    // feedback, per-order daily counters and purge events.
    r#"
CREATE TABLE case_file_v4 (
    id             INTEGER PRIMARY KEY,
    account        TEXT    NOT NULL,
    order_id       BLOB    NOT NULL CHECK (length(order_id) = 16),
    created_at     INTEGER NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('open', 'awaiting-second', 'confirmed', 'rejected',
                                                      'forwarded', 'false-positive', 'withdrawn')),
    reviewer       TEXT,
    reason         TEXT,
    decided_at     INTEGER,
    ad_purged      INTEGER NOT NULL DEFAULT 0,
    four_eyes      INTEGER NOT NULL DEFAULT 0,
    urgent         INTEGER NOT NULL DEFAULT 0,
    closed_at      INTEGER,
    centre_verdict TEXT,
    centre_reason  TEXT,
    -- When the Centre's verdict arrived (for the statistics of a period).
    centre_at      INTEGER,
    report_id      BLOB    CHECK (report_id IS NULL OR length(report_id) = 16)
);
INSERT INTO case_file_v4 (id, account, order_id, created_at, status, reviewer, reason, decided_at, ad_purged)
    SELECT id, account, order_id, created_at, status, reviewer, reason, decided_at, ad_purged FROM case_file;
DROP TABLE case_file;
ALTER TABLE case_file_v4 RENAME TO case_file;
CREATE INDEX case_file_order ON case_file (order_id);
CREATE INDEX case_file_closed ON case_file (closed_at) WHERE closed_at IS NOT NULL;

-- Review decisions, `seq` from 0 in the order made. `resulting_status` is the
-- case's status after the decision (for the statistics).
CREATE TABLE case_decision (
    case_id          INTEGER NOT NULL REFERENCES case_file (id),
    seq              INTEGER NOT NULL CHECK (seq >= 0),
    reviewer         TEXT    NOT NULL,
    role             TEXT    NOT NULL,
    verdict          TEXT    NOT NULL CHECK (verdict IN ('confirm', 'reject')),
    reason           TEXT    NOT NULL,
    comment          TEXT    NOT NULL,
    at               INTEGER NOT NULL,
    resulting_status TEXT    NOT NULL,
    PRIMARY KEY (case_id, seq),
    UNIQUE (case_id, reviewer)
);

-- Messages to the Centre. `digest` (SHA-256 of the bytes) makes enqueueing
-- idempotent also after `bytes` were purged (set to NULL).
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    message_id      BLOB    NOT NULL UNIQUE CHECK (length(message_id) = 16),
    kind            TEXT    NOT NULL CHECK (kind IN ('report', 'withdrawal', 'feedback')),
    case_id         INTEGER REFERENCES case_file (id),
    bytes           BLOB,
    digest          BLOB    NOT NULL CHECK (length(digest) = 32),
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    INTEGER,
    receipt         BLOB
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE delivered_at IS NULL;
CREATE INDEX outbox_case ON outbox (case_id) WHERE case_id IS NOT NULL;

CREATE TABLE notice (
    id              INTEGER PRIMARY KEY,
    account         TEXT    NOT NULL,
    case_id         INTEGER NOT NULL UNIQUE REFERENCES case_file (id),
    order_id        BLOB    NOT NULL CHECK (length(order_id) = 16),
    order_hash      BLOB    NOT NULL CHECK (length(order_hash) = 32),
    reported_at     INTEGER NOT NULL,
    appeal_deadline INTEGER NOT NULL,
    action_reversed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX notice_account ON notice (account, id);

CREATE TABLE notice_attachment (
    notice_id  INTEGER NOT NULL REFERENCES notice (id),
    pos        INTEGER NOT NULL,
    attachment BLOB    NOT NULL CHECK (length(attachment) = 32),
    time       INTEGER NOT NULL,
    PRIMARY KEY (notice_id, pos)
) WITHOUT ROWID;

CREATE TABLE appeal (
    id         INTEGER PRIMARY KEY,
    notice_id  INTEGER NOT NULL UNIQUE REFERENCES notice (id),
    case_id    INTEGER NOT NULL REFERENCES case_file (id),
    account    TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    filed_at   INTEGER NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('pending', 'upheld', 'dismissed')),
    decided_by TEXT,
    decided_at INTEGER,
    reason     TEXT
);
CREATE INDEX appeal_status ON appeal (status, id);

-- Items dropped by the second-hash check, by voucher (idempotent).
CREATE TABLE second_hash_drop (
    order_id     BLOB    NOT NULL CHECK (length(order_id) = 16),
    voucher_id   BLOB    NOT NULL CHECK (length(voucher_id) = 16),
    primary_hash BLOB    NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (order_id, voucher_id)
) WITHOUT ROWID;

-- Primaries of the items of cases rejected in review.
CREATE TABLE review_rejection (
    case_id      INTEGER NOT NULL REFERENCES case_file (id),
    primary_hash BLOB    NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (case_id, primary_hash)
) WITHOUT ROWID;

-- Voucher counts per order and UTC day (`day` = Unix seconds div 86400).
CREATE TABLE order_counter (
    order_id              BLOB    NOT NULL CHECK (length(order_id) = 16),
    day                   INTEGER NOT NULL,
    vouchers_received     INTEGER NOT NULL DEFAULT 0,
    vouchers_opened       INTEGER NOT NULL DEFAULT 0,
    vouchers_non_matching INTEGER NOT NULL DEFAULT 0,
    vouchers_invalid      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (order_id, day)
) WITHOUT ROWID;

-- Accounts active per order and day, for the count of distinct accounts.
CREATE TABLE order_account_day (
    order_id BLOB    NOT NULL CHECK (length(order_id) = 16),
    day      INTEGER NOT NULL,
    account  TEXT    NOT NULL,
    PRIMARY KEY (order_id, day, account)
) WITHOUT ROWID;

-- What retention deleted: an order purge (opened vouchers, items) or a case
-- purge (items, outbox bytes).
CREATE TABLE purge_event (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('order', 'case')),
    order_id BLOB    NOT NULL CHECK (length(order_id) = 16),
    case_id  INTEGER,
    items    INTEGER NOT NULL CHECK (items >= 0),
    vouchers INTEGER NOT NULL CHECK (vouchers >= 0),
    outbox   INTEGER NOT NULL CHECK (outbox >= 0)
);
CREATE INDEX purge_event_order ON purge_event (order_id, at);
"#,
    // v5: client states (several devices and reinstalls per account), batch
    // digests (idempotency that refuses other content under a used id), the
    // backlog's bytes, and the cost bound on failed reconstructions.
    r#"
-- The client state that made the batch: 16 random public bytes; all zero for
-- a batch that named none (the account's default state, and every batch
-- stored before v5).
ALTER TABLE inbox_batch ADD COLUMN client_state BLOB NOT NULL
    DEFAULT x'00000000000000000000000000000000' CHECK (length(client_state) = 16);
-- SHA-256 of the batch's content (see `inbox::digest`); NULL for batches
-- stored before v5, which stay idempotent on their id alone.
ALTER TABLE inbox_batch ADD COLUMN digest BLOB CHECK (digest IS NULL OR length(digest) = 32);
-- Bytes of the batch's vouchers, for the backlog bound. For a batch pending
-- at the migration, the length of its in-row blob (a few bytes of framing
-- more than its vouchers); one in a spool file counts 0 until processed.
ALTER TABLE inbox_batch ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0);
UPDATE inbox_batch SET bytes = length(vouchers) WHERE processed_at IS NULL AND vouchers IS NOT NULL;

ALTER TABLE opened_voucher ADD COLUMN client_state BLOB NOT NULL
    DEFAULT x'00000000000000000000000000000000' CHECK (length(client_state) = 16);
CREATE INDEX opened_voucher_state ON opened_voucher (account, order_id, client_state, seq);

-- Threshold state per client state (it was per account).
CREATE TABLE account_state_v5 (
    account      TEXT NOT NULL,
    order_id     BLOB NOT NULL CHECK (length(order_id) = 16),
    client_state BLOB NOT NULL CHECK (length(client_state) = 16),
    state        BLOB NOT NULL,
    PRIMARY KEY (account, order_id, client_state)
);
INSERT INTO account_state_v5 (account, order_id, client_state, state)
    SELECT account, order_id, x'00000000000000000000000000000000', state FROM account_state;
DROP TABLE account_state;
ALTER TABLE account_state_v5 RENAME TO account_state;
CREATE INDEX account_state_order ON account_state (order_id);

-- The client states seen per account and order (bounded by the server's
-- `limits.max_client_states`).
CREATE TABLE client_state (
    account      TEXT    NOT NULL,
    order_id     BLOB    NOT NULL CHECK (length(order_id) = 16),
    client_state BLOB    NOT NULL CHECK (length(client_state) = 16),
    first_seen   INTEGER NOT NULL,
    PRIMARY KEY (account, order_id, client_state)
) WITHOUT ROWID;
INSERT INTO client_state (account, order_id, client_state, first_seen)
    SELECT DISTINCT account, order_id, x'00000000000000000000000000000000', 0 FROM opened_voucher;

-- Failed threshold reconstructions per client state: the distinct shares of
-- the last failed attempt (the next attempt waits until they have doubled)
-- and how many attempts failed.
CREATE TABLE threshold_failure (
    account      TEXT    NOT NULL,
    order_id     BLOB    NOT NULL CHECK (length(order_id) = 16),
    client_state BLOB    NOT NULL CHECK (length(client_state) = 16),
    shares       INTEGER NOT NULL CHECK (shares >= 0),
    failures     INTEGER NOT NULL CHECK (failures >= 1),
    last_at      INTEGER NOT NULL,
    PRIMARY KEY (account, order_id, client_state)
) WITHOUT ROWID;
"#,
    // v6: cover writes. Completing a batch writes one row per voucher whatever
    // opening gave: an opened voucher its row in `opened_voucher`, every other
    // voucher a row of the same size here, with the same indexes, written
    // over a ring of 4096 slots, so the table never grows. It holds zeros
    // and random ids only and is never read.
    // So how long a round's transaction holds the write lock, which the
    // intake's acknowledgements wait on, does not follow how many of its
    // vouchers matched (docs/LEAKAGE.md §6).
    r#"
CREATE TABLE store_cover (
    slot         INTEGER PRIMARY KEY,
    account      TEXT    NOT NULL,
    order_id     BLOB    NOT NULL,
    voucher_id   BLOB    NOT NULL,
    payload      BLOB    NOT NULL,
    batch        INTEGER NOT NULL,
    client_state BLOB    NOT NULL,
    UNIQUE (account, order_id, voucher_id)
);
CREATE INDEX store_cover_order ON store_cover (order_id);
CREATE INDEX store_cover_state ON store_cover (account, order_id, client_state, slot);
"#,
    // v7: claims of accounts by workers (`Store::claim_batches`): several server processes may share a database
    // (PostgreSQL, or a SQLite file opened by more than one process); a worker processes only the batches of
    // accounts it claims, until the claim lapses.
    r#"
CREATE TABLE account_claim (
    account TEXT    PRIMARY KEY,
    worker  TEXT    NOT NULL,
    until   INTEGER NOT NULL
);
CREATE INDEX account_claim_worker ON account_claim (worker);
"#,
    // v8: witnesses' cosignatures of the transparency log's checkpoints (`Store::put_log_cosignature`), shared by
    // the server processes on one database: each keeps the same tree in its own log directory, and a cosignature
    // handed to one is served by all.
    r#"
CREATE TABLE log_cosignature (
    origin     TEXT    NOT NULL,
    checkpoint BLOB    NOT NULL CHECK (length(checkpoint) = 32),
    tree_size  INTEGER NOT NULL CHECK (tree_size >= 0),
    witness    TEXT    NOT NULL,
    line       TEXT    NOT NULL,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (checkpoint, witness)
) WITHOUT ROWID;
CREATE INDEX log_cosignature_size ON log_cosignature (origin, tree_size);
"#,
];

/// Schema version whose migration is followed by the move of v1 `inbox_voucher`
/// rows into `inbox_batch.vouchers` (done in Rust, in the same transaction).
pub(crate) const INBOX_BLOB_MIGRATION: usize = 2;

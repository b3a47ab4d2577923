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
];

/// Schema version whose migration is followed by the move of v1 `inbox_voucher`
/// rows into `inbox_batch.vouchers` (done in Rust, in the same transaction).
pub(crate) const INBOX_BLOB_MIGRATION: usize = 2;

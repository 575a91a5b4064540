-- The reference server's SQLite schema (see store.py); run with executescript at start-up.
CREATE TABLE IF NOT EXISTS referrals (
    referral_id     TEXT PRIMARY KEY,
    status          TEXT NOT NULL CHECK (status IN ('received', 'withdrawn')),
    received_epoch  INTEGER NOT NULL,
    received_at     TEXT NOT NULL,
    withdrawn_at    TEXT,
    priority        TEXT NOT NULL,
    payload_json    TEXT NOT NULL,
    body_hash       TEXT NOT NULL,
    contact_hash    TEXT,
    sim_next_index  INTEGER NOT NULL DEFAULT 0,
    sim_next_epoch  INTEGER
);
CREATE INDEX IF NOT EXISTS referrals_sim_due
    ON referrals (sim_next_epoch) WHERE sim_next_epoch IS NOT NULL;
CREATE TABLE IF NOT EXISTS contacts (
    referral_id         TEXT PRIMARY KEY REFERENCES referrals (referral_id),
    given_name          TEXT NOT NULL,
    family_name         TEXT NOT NULL,
    phone               TEXT,
    email               TEXT,
    preferred_contact   TEXT NOT NULL,
    safe_contact_notes  TEXT,
    language            TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL UNIQUE,
    referral_id     TEXT NOT NULL,
    type            TEXT NOT NULL,
    occurred_at     TEXT NOT NULL,
    occurred_epoch  INTEGER NOT NULL,
    sim_index       INTEGER,
    UNIQUE (referral_id, sim_index)
);
CREATE INDEX IF NOT EXISTS events_by_referral ON events (referral_id, seq);
CREATE TABLE IF NOT EXISTS meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS request_log (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    route        TEXT NOT NULL,
    path         TEXT NOT NULL,
    key          TEXT,
    body         TEXT NOT NULL
);

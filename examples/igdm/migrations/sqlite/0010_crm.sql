-- Contacts as a CRM (issue 7, item 2): profiles, tags, custom fields, pipeline stages and their
-- history. Keep in step with ../postgres/0010_crm.sql. Contact rows stay automation-core's
-- (`contacts`); everything here hangs off a contact (`account`, `contact` = IGSID) or off an
-- organization (`org_id`).

-- The User Profile API's answer for a contact (fetched only with the person's consent: they
-- messaged the account). The picture URL expires: it is served only before
-- `profile_pic_expires_at`. The last refusal or error of the platform is kept beside it.
CREATE TABLE contact_profiles (
    account                 TEXT NOT NULL,
    contact                 TEXT NOT NULL,
    name                    TEXT,
    username                TEXT,
    profile_pic             TEXT,
    profile_pic_fetched_at  INTEGER,
    profile_pic_expires_at  INTEGER,
    follower_count          INTEGER,
    is_user_follow_business INTEGER,          -- 1 | 0 | NULL (unknown)
    is_business_follow_user INTEGER,
    is_verified_user        INTEGER,
    fetched_at              INTEGER,          -- last successful fetch
    attempted_at            INTEGER NOT NULL, -- last attempt
    error_kind              TEXT,            -- the last attempt's failure (NULL: it succeeded)
    error_message           TEXT,
    PRIMARY KEY (account, contact)
);

-- Tags people put on contacts through the API.
CREATE TABLE contact_tags (
    account    TEXT NOT NULL,
    contact    TEXT NOT NULL,
    tag        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account, contact, tag)
);
CREATE INDEX contact_tags_tag ON contact_tags (account, tag);

-- Custom field definitions of an organization.
CREATE TABLE crm_fields (
    org_id     TEXT NOT NULL,
    key        TEXT NOT NULL,
    label      TEXT NOT NULL,
    type       TEXT NOT NULL,                -- text | number | date | bool
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, key)
);

-- A contact's custom field values, stored canonical (number: shortest decimal, date:
-- YYYY-MM-DD, bool: true | false), validated against the field's type when set.
CREATE TABLE contact_field_values (
    account    TEXT NOT NULL,
    contact    TEXT NOT NULL,
    field      TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account, contact, field)
);
CREATE INDEX contact_field_values_field ON contact_field_values (account, field, value);

-- Pipeline stages of an organization, in order.
CREATE TABLE crm_stages (
    org_id     TEXT NOT NULL,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    position   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);

-- The stage a contact is in.
CREATE TABLE contact_stages (
    account    TEXT NOT NULL,
    contact    TEXT NOT NULL,
    stage      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account, contact)
);
CREATE INDEX contact_stages_stage ON contact_stages (account, stage);

-- Every move of a contact between stages: from (NULL: none), to (NULL: removed), who, when.
CREATE TABLE contact_stage_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account    TEXT NOT NULL,
    contact    TEXT NOT NULL,
    from_stage TEXT,
    to_stage   TEXT,
    moved_by   TEXT,                         -- the member (users.id), NULL for keys
    moved_via  TEXT NOT NULL,                -- session | api_key | operator
    at         INTEGER NOT NULL
);
CREATE INDEX contact_stage_history_contact ON contact_stage_history (account, contact, id);

-- (PostgreSQL adds row-level security policies here; SQLite has none: the application's
-- scoping by organization is the only wall on SQLite.)

-- Conveyor PostgreSQL result backend: schema, for teams that run their own migrations.
--
-- The backend creates exactly this on first use (option createSchema, on by default). To manage
-- it yourself, run this file once and pass createSchema: false.
--
-- Names: this file uses the defaults, schema "public", tables "conveyor_task_results" and
-- "conveyor_group_results". If you configure other names (options schema, table, groupTable),
-- replace those three names everywhere below, including inside the index names (an index is
-- named <table>_updated_at_idx). Names are letters, digits and underscores; tables at most 48
-- characters. The backend always double-quotes them, so keep the quotes.
--
-- Needs PostgreSQL 11 or later (hashtextextended, used by the backend for advisory locks).

CREATE SCHEMA IF NOT EXISTS "public";

-- One row per task: the Celery result meta document, as stored by every Conveyor backend.
CREATE TABLE IF NOT EXISTS "public"."conveyor_task_results" (
  task_id    text        PRIMARY KEY,
  -- Copy of meta->>'status', so the final-state guard and the poll need not read the document.
  status     text        NOT NULL,
  meta       jsonb       NOT NULL,
  -- Time of the last write, by the database's clock: what expiry compares with.
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS "conveyor_task_results_updated_at_idx" ON "public"."conveyor_task_results" (updated_at);

-- One row per group (Celery's taskset meta).
CREATE TABLE IF NOT EXISTS "public"."conveyor_group_results" (
  group_id   text        PRIMARY KEY,
  meta       jsonb       NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS "conveyor_group_results_updated_at_idx" ON "public"."conveyor_group_results" (updated_at);

/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/*
 * The fleet's schema in PostgreSQL: the same tables as the SQLite state
 * (db.h), with what a fleet adds (nodes, a claim generation on tasks and
 * sessions, each node's health row, the conversations a resume on another
 * node needs). Times are UTC seconds since the epoch, as in SQLite, so that
 * the queue's logic reads both alike; heartbeats take the server's clock,
 * the one clock every node shares. Flags are 0/1 bigints, as in SQLite, so
 * that one SQL text serves both.
 *
 * Migrations are versioned in the table jada_schema (one row). Whoever
 * migrates holds the advisory lock PG_LOCK_MIGRATE for the whole of it, so
 * that nodes starting together run each migration once; the upgrade itself
 * is one transaction.
 */

/* pg_advisory_lock(PG_LOCK_CLASS, PG_LOCK_...): the two-int form, whose
 * first half is our application id ("JADA"), out of anyone else's way. */
#define PG_LOCK_CLASS   1245791297      /* 0x4A414441 */
#define PG_LOCK_MIGRATE 1
#define PG_LOCK_LEADER  2               /* session-level: the node that syncs and prunes */
#define PG_LOCK_WRITE   3               /* transaction-level: one writing transaction at a time */

/* The version this binary migrates to. */
int pg_schema_version(void);

/* Creates jada_schema if missing and selects the current version (0: a
 * database none of us has touched): one simple-protocol string, two
 * statements; the last result is the version. */
extern const char pg_schema_version_sql[];

/* The statements that migrate from version `from` to pg_schema_version()
 * and record it, as one simple-protocol string: PostgreSQL runs it as one
 * transaction and rolls all of it back on an error. NULL if there is nothing to do or from is newer than this
 * binary knows (see pg_schema_too_new). free() it. */
char *pg_schema_upgrade_sql(int from);
/* Whether a database at this version was migrated by a newer binary. */
int pg_schema_too_new(int version);

/* The tables `db copy` fills and expects empty, in an order that respects
 * their foreign keys. */
extern const char *const pg_schema_copy_tables[];

import { sql, type Kysely } from 'kysely'

// Frozen: never edit after it has shipped; add a new migration instead.
export async function up(db: Kysely<any>): Promise<void> {
  // The record list as people page it: one row per listed item (a linked pair, or a record on one
  // side only) with its status and display sort key, so that a page is a keyset walk over an index
  // carrying the status, never a computation over every record of the type. Kept from the marks
  // below by src/sync/items.ts, in display order by byte ("C"), as the list's cursor compares.
  await sql`create table record_items (
      company_id bigint not null,
      type text not null,
      k text collate "C" not null,
      sort_key text collate "C" not null,
      status text not null,
      -- false: an ERP record of an archivable type that is inactive (not ready to import)
      active boolean not null,
      link_id uuid,
      procore_id text,
      erp_id text,
      primary key (company_id, type, k)
    )`.execute(db)
  await sql`create index record_items_status_order on record_items (company_id, type, status, sort_key, k)`.execute(db)
  await sql`create index record_items_order on record_items (company_id, type, sort_key, k)`.execute(db)
  await sql`create index record_items_procore on record_items (company_id, type, procore_id)`.execute(db)
  await sql`create index record_items_erp on record_items (company_id, type, erp_id)`.execute(db)

  // Items per status, changed by the same transaction that changes the items: list counts read here.
  await sql`create table record_item_counts (
      company_id bigint not null,
      type text not null,
      status text not null,
      active boolean not null,
      n bigint not null,
      primary key (company_id, type, status, active)
    )`.execute(db)

  // Records whose listed item may have changed: an append-only log like sync_dirty, written by the
  // triggers below in the writer's transaction, drained (by seq) under a per-company-and-type lock.
  await db.schema
    .createTable('record_item_dirty')
    .addColumn('seq', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('company_id', 'bigint', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('side', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('record_item_dirty_company_idx')
    .on('record_item_dirty')
    .columns(['company_id', 'type', 'seq'])
    .execute()

  // Statement-level triggers with transition tables: one insert of marks per statement, whatever
  // the number of rows; updates mark only rows whose status-bearing columns changed.
  await sql`create function record_items_mark_snapshots() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' then
        insert into record_item_dirty (company_id, type, side, external_id)
          select company_id, type, side, external_id from new_rows;
      elsif tg_op = 'UPDATE' then
        insert into record_item_dirty (company_id, type, side, external_id)
          select n.company_id, n.type, n.side, n.external_id from new_rows n
          join old_rows o on o.company_id = n.company_id and o.side = n.side and o.type = n.type
            and o.external_id = n.external_id
          where o.fields is distinct from n.fields or o.deleted_at is distinct from n.deleted_at;
      else
        insert into record_item_dirty (company_id, type, side, external_id)
          select company_id, type, side, external_id from old_rows;
      end if;
      return null;
    end $$`.execute(db)
  await sql`create function record_items_mark_links() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' then
        insert into record_item_dirty (company_id, type, side, external_id)
          select company_id, type, 'procore', procore_id from new_rows
          union all select company_id, type, 'erp', erp_id from new_rows;
      elsif tg_op = 'UPDATE' then
        insert into record_item_dirty (company_id, type, side, external_id)
          select x.company_id, x.type, s.side, s.id from (
            select n.company_id, n.type, n.procore_id, n.erp_id, o.procore_id as o_procore_id, o.erp_id as o_erp_id
            from new_rows n join old_rows o on o.id = n.id
            where o.unlinked_at is distinct from n.unlinked_at or o.procore_id <> n.procore_id or o.erp_id <> n.erp_id
          ) x cross join lateral (values ('procore', x.procore_id), ('erp', x.erp_id),
            ('procore', x.o_procore_id), ('erp', x.o_erp_id)) s (side, id);
      else
        insert into record_item_dirty (company_id, type, side, external_id)
          select company_id, type, 'procore', procore_id from old_rows
          union all select company_id, type, 'erp', erp_id from old_rows;
      end if;
      return null;
    end $$`.execute(db)
  await sql`create function record_items_mark_discrepancies() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' then
        insert into record_item_dirty (company_id, type, side, external_id)
          select l.company_id, l.type, s.side, s.id from new_rows n join record_links l on l.id = n.link_id
          cross join lateral (values ('procore', l.procore_id), ('erp', l.erp_id)) s (side, id);
      elsif tg_op = 'UPDATE' then
        insert into record_item_dirty (company_id, type, side, external_id)
          select l.company_id, l.type, s.side, s.id from new_rows n join old_rows o on o.id = n.id
          join record_links l on l.id = n.link_id
          cross join lateral (values ('procore', l.procore_id), ('erp', l.erp_id)) s (side, id)
          where o.status <> n.status;
      else
        insert into record_item_dirty (company_id, type, side, external_id)
          select l.company_id, l.type, s.side, s.id from old_rows o join record_links l on l.id = o.link_id
          cross join lateral (values ('procore', l.procore_id), ('erp', l.erp_id)) s (side, id);
      end if;
      return null;
    end $$`.execute(db)
  await sql`create function record_items_mark_flags() returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' then
        insert into record_item_dirty (company_id, type, side, external_id)
          select company_id, type, side, external_id from new_rows;
      elsif tg_op = 'UPDATE' then
        insert into record_item_dirty (company_id, type, side, external_id)
          select n.company_id, n.type, n.side, n.external_id from new_rows n
          join old_rows o on o.company_id = n.company_id and o.type = n.type and o.side = n.side
            and o.external_id = n.external_id
          where (o.ignored_at is null) <> (n.ignored_at is null) or (o.failed_at is null) <> (n.failed_at is null);
      else
        insert into record_item_dirty (company_id, type, side, external_id)
          select company_id, type, side, external_id from old_rows;
      end if;
      return null;
    end $$`.execute(db)
  for (const [table, fn] of [
    ['record_snapshots', 'record_items_mark_snapshots'],
    ['record_links', 'record_items_mark_links'],
    ['discrepancies', 'record_items_mark_discrepancies'],
    ['record_flags', 'record_items_mark_flags'],
  ] as const) {
    await sql`create trigger ${sql.raw(`${table}_items_insert`)} after insert on ${sql.raw(table)}
      referencing new table as new_rows for each statement execute function ${sql.raw(fn)}()`.execute(db)
    await sql`create trigger ${sql.raw(`${table}_items_update`)} after update on ${sql.raw(table)}
      referencing old table as old_rows new table as new_rows for each statement execute function ${sql.raw(fn)}()`.execute(
      db,
    )
    await sql`create trigger ${sql.raw(`${table}_items_delete`)} after delete on ${sql.raw(table)}
      referencing old table as old_rows for each statement execute function ${sql.raw(fn)}()`.execute(db)
  }

  // What exists already: every known record is marked, and the first read of each list builds it.
  await sql`insert into record_item_dirty (company_id, type, side, external_id)
    select company_id, type, side, external_id from record_snapshots
    union all select company_id, type, 'procore', procore_id from record_links where unlinked_at is null`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['record_snapshots', 'record_links', 'discrepancies', 'record_flags']) {
    for (const op of ['insert', 'update', 'delete'])
      await sql`drop trigger ${sql.raw(`${table}_items_${op}`)} on ${sql.raw(table)}`.execute(db)
  }
  for (const fn of ['snapshots', 'links', 'discrepancies', 'flags'])
    await sql`drop function ${sql.raw(`record_items_mark_${fn}`)}()`.execute(db)
  await db.schema.dropTable('record_item_dirty').execute()
  await db.schema.dropTable('record_item_counts').execute()
  await db.schema.dropTable('record_items').execute()
}

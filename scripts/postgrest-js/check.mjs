// The official, unmodified @supabase/postgrest-js client against Athena's
// /rest/v1 in PostgREST's bare shape (issue 14). Run by
// scripts/postgrest-js-check, which creates the tables `pgjs_teams` and
// `pgjs_players` on the client's database first:
//   pgjs_teams:   (1, 'red'), (2, 'blue')
//   pgjs_players: (1, 'ann', 1, 10), (2, 'bob', 1, 20), (3, 'cid', 2, 30)
// Every step asserts its answer and, for writes, reads the effect back
// through the client; the first failure exits non-zero.
//
// Env: ATHENA_URL (http://127.0.0.1:4052), ATHENA_CLIENT (the
// X-Athena-Client), ATHENA_API_KEY (optional: sent as `apikey`).

import assert from 'node:assert/strict'
import { PostgrestClient } from '@supabase/postgrest-js'

const url = (process.env.ATHENA_URL ?? 'http://127.0.0.1:4052').replace(/\/$/, '')
const headers = {
  'X-Athena-Client': process.env.ATHENA_CLIENT ?? 'local',
  'X-Athena-Rest-Shape': 'postgrest',
}
if (process.env.ATHENA_API_KEY) headers.apikey = process.env.ATHENA_API_KEY

// Exactly what supabase-js's `from()` does: a PostgrestClient on `<url>/rest/v1`.
const db = new PostgrestClient(`${url}/rest/v1`, { headers })

let failed = 0
let passed = 0
async function step(name, fn) {
  try {
    await fn()
    passed++
    console.log(`ok   ${name}`)
  } catch (e) {
    failed++
    console.log(`FAIL ${name}\n     ${String(e.message).split('\n').join('\n     ')}`)
  }
}

/** The ok answer of a query (its error shown otherwise). */
function ok(res, status) {
  assert.equal(res.error, null, `error: ${JSON.stringify(res.error)}`)
  if (status !== undefined) assert.equal(res.status, status, 'status')
  return res.data
}

async function players() {
  return ok(await db.from('pgjs_players').select('id,name,team_id,score').order('id'))
}

await step('select with an embed and filters', async () => {
  const data = ok(
    await db.from('pgjs_players').select('name,pgjs_teams(name)').gte('score', 20).order('id'),
    200,
  )
  assert.deepEqual(data, [
    { name: 'bob', pgjs_teams: { name: 'red' } },
    { name: 'cid', pgjs_teams: { name: 'blue' } },
  ])
})

await step('select with in/like/or filters', async () => {
  const data = ok(
    await db.from('pgjs_players').select('id').in('id', [1, 3]).like('name', '%n%').order('id'),
  )
  assert.deepEqual(data, [{ id: 1 }])
  const either = ok(
    await db.from('pgjs_players').select('id').or('id.eq.1,score.gte.30').order('id', { ascending: false }),
  )
  assert.deepEqual(either, [{ id: 3 }, { id: 1 }])
})

await step("count: 'exact' with range()", async () => {
  const res = await db.from('pgjs_players').select('id', { count: 'exact' }).order('id').range(0, 1)
  assert.deepEqual(ok(res, 206), [{ id: 1 }, { id: 2 }])
  assert.equal(res.count, 3)
  const all = await db.from('pgjs_players').select('id', { count: 'exact' }).order('id').range(1, 5)
  // Rows 1-2 of 3: still partial (PostgREST's rule: fewer rows than the total).
  assert.deepEqual(ok(all, 206), [{ id: 2 }, { id: 3 }])
  assert.equal(all.count, 3)
})

await step("count: 'exact', head: true", async () => {
  const res = await db.from('pgjs_players').select('*', { count: 'exact', head: true })
  assert.equal(res.error, null, JSON.stringify(res.error))
  assert.equal(res.count, 3)
})

await step('single() and maybeSingle()', async () => {
  const one = ok(await db.from('pgjs_players').select('name').eq('id', 2).single(), 200)
  assert.deepEqual(one, { name: 'bob' })
  const many = await db.from('pgjs_players').select('name').gt('id', 0).single()
  assert.equal(many.status, 406)
  assert.equal(many.error?.code, 'PGRST116')
  assert.equal(many.data, null)
  const none = await db.from('pgjs_players').select('name').eq('id', 999).maybeSingle()
  assert.equal(none.error, null, JSON.stringify(none.error))
  assert.equal(none.data, null)
})

await step('insert without select(): 201, no body', async () => {
  const res = await db.from('pgjs_players').insert({ id: 4, name: 'dan', team_id: 2, score: 40 })
  assert.equal(res.error, null, JSON.stringify(res.error))
  assert.equal(res.status, 201)
  assert.equal(res.data, null)
  assert.deepEqual((await players()).map((p) => p.name), ['ann', 'bob', 'cid', 'dan'])
})

await step('insert().select() (one row, then several)', async () => {
  const one = ok(await db.from('pgjs_players').insert({ id: 5, name: 'eve' }).select(), 201)
  assert.deepEqual(one, [{ id: 5, name: 'eve', team_id: null, score: null }])
  const rows = ok(
    await db.from('pgjs_players').insert([{ id: 6, name: 'fay', score: 1 }, { id: 7, name: 'gus', score: 2 }]).select('id,name'),
    201,
  )
  assert.deepEqual(rows, [{ id: 6, name: 'fay' }, { id: 7, name: 'gus' }])
  assert.equal((await players()).length, 7)
})

await step('insert().select().single()', async () => {
  const row = ok(await db.from('pgjs_players').insert({ id: 8, name: 'hal' }).select('id,name').single(), 201)
  assert.deepEqual(row, { id: 8, name: 'hal' })
})

await step('insert of a duplicate: 409 23505', async () => {
  const res = await db.from('pgjs_players').insert({ id: 9, name: 'ann' })
  assert.equal(res.status, 409)
  assert.equal(res.error?.code, '23505')
  assert.equal((await players()).length, 8)
})

await step('upsert().select() on the primary key', async () => {
  const rows = ok(await db.from('pgjs_players').upsert({ id: 8, name: 'hank' }).select('id,name'), 201)
  assert.deepEqual(rows, [{ id: 8, name: 'hank' }])
  assert.equal((await players()).find((p) => p.id === 8).name, 'hank')
})

await step("upsert({ onConflict: 'name' })", async () => {
  const rows = ok(
    await db.from('pgjs_players').upsert({ id: 8, name: 'hank', score: 80 }, { onConflict: 'name' }).select('name,score'),
    201,
  )
  assert.deepEqual(rows, [{ name: 'hank', score: 80 }])
  assert.equal((await players()).find((p) => p.id === 8).score, 80)
})

await step('upsert({ ignoreDuplicates: true })', async () => {
  const res = await db.from('pgjs_players').upsert({ id: 8, name: 'other' }, { ignoreDuplicates: true }).select()
  assert.deepEqual(ok(res, 201), [])
  assert.equal((await players()).find((p) => p.id === 8).name, 'hank')
})

await step('update().select()', async () => {
  const rows = ok(await db.from('pgjs_players').update({ score: 99 }).eq('id', 1).select('id,score'), 200)
  assert.deepEqual(rows, [{ id: 1, score: 99 }])
  assert.equal((await players()).find((p) => p.id === 1).score, 99)
})

await step('update() without select(): 204', async () => {
  const res = await db.from('pgjs_players').update({ score: 98 }).eq('id', 1)
  assert.equal(res.error, null, JSON.stringify(res.error))
  assert.equal(res.status, 204)
  assert.equal((await players()).find((p) => p.id === 1).score, 98)
})

await step('update().select().single()', async () => {
  const row = ok(await db.from('pgjs_players').update({ score: 97 }).eq('id', 1).select('score').single(), 200)
  assert.deepEqual(row, { score: 97 })
})

await step('delete().select()', async () => {
  const rows = ok(await db.from('pgjs_players').delete().eq('id', 7).select('id,name'), 200)
  assert.deepEqual(rows, [{ id: 7, name: 'gus' }])
  assert.equal((await players()).find((p) => p.id === 7), undefined)
})

await step("delete({ count: 'exact' })", async () => {
  const res = await db.from('pgjs_players').delete({ count: 'exact' }).in('id', [5, 6])
  assert.equal(res.error, null, JSON.stringify(res.error))
  assert.equal(res.status, 204)
  assert.equal(res.count, 2)
  assert.deepEqual((await players()).map((p) => p.id), [1, 2, 3, 4, 8])
})

// The next two need the rest of issue 14's grammar (column aliases and casts
// in `select`, `?select=` on writes with aliases).
await step('select with column aliases and casts', async () => {
  const data = ok(
    await db.from('pgjs_players').select('playerName:name,score::text,team:pgjs_teams(teamName:name)').eq('id', 2),
    200,
  )
  assert.deepEqual(data, [{ playerName: 'bob', score: '20', team: { teamName: 'red' } }])
})

await step('update().select() with an alias', async () => {
  const rows = ok(await db.from('pgjs_players').update({ score: 21 }).eq('id', 2).select('playerName:name,score'), 200)
  assert.deepEqual(rows, [{ playerName: 'bob', score: 21 }])
  assert.equal((await players()).find((p) => p.id === 2).score, 21)
})

await step('unknown table: 404 with PostgREST error JSON', async () => {
  const res = await db.from('pgjs_nope').select()
  assert.equal(res.status, 404)
  assert.ok(['PGRST205', '42P01'].includes(res.error?.code), JSON.stringify(res.error))
  assert.equal(typeof res.error.message, 'string')
})

console.log(`\n${passed} passed, ${failed} failed`)
process.exit(failed ? 1 : 0)

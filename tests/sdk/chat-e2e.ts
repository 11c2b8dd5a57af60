// Durable chat through the unmodified athena-js SDK's chat module: every
// method it exposes — `room.create/list/get/update/archive/resolveDirect`,
// `room.message.send/list/update/delete`, `room.readCursor.upTo`,
// `room.member.list/add/remove`, `message.reaction.add/remove`,
// `message.search` and `realtime.info` — as a real app calls them: one
// `createClient({ url, key, client, chat: { bearerToken } })` per end user,
// the end user named by a bearer JWT (HS256, `ATHENA_AUTH_JWT_SECRET`, `sub`
// + `org_id`, as `src/auth/end_user.rs` verifies it), the API key a key the
// server accepts for chat (`chat.use` under key enforcement). Two users of
// one organization and one of another. Every step checks its effect (read
// back through another call or another user); a failing step prints the
// SDK's error and the last HTTP exchanges, the others still run, and the
// exit status is 1. Run from an athena-js checkout (README "Chat").
import { createHmac, randomUUID } from "node:crypto";
import { createClient } from "./src/v3-client.ts";

const BASE = process.env.ATHENA_URL!;
const KEY = process.env.ATHENA_API_KEY!;
const CLIENT = process.env.ATHENA_CLIENT ?? "local";
const SECRET = process.env.ATHENA_AUTH_JWT_SECRET!;
if (!BASE || !KEY || !SECRET) {
  console.error("ATHENA_URL, ATHENA_API_KEY and ATHENA_AUTH_JWT_SECRET are required");
  process.exit(2);
}

// The last HTTP exchanges (diagnostics only: the SDK's own fetch, observed).
type Exchange = { method: string; url: string; request?: string; status?: number; response?: string };
const exchanges: Exchange[] = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input: any, init?: any) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const ex: Exchange = { method: init?.method ?? "GET", url };
  if (typeof init?.body === "string") ex.request = init.body.slice(0, 600);
  exchanges.push(ex);
  if (exchanges.length > 6) exchanges.shift();
  const res = await realFetch(input, init);
  ex.status = res.status;
  ex.response = (await res.clone().text()).slice(0, 600);
  return res;
};

function check(what: string, ok: unknown) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

const failures: string[] = [];
let steps = 0;
async function step(name: string, body: () => Promise<void>) {
  exchanges.length = 0;
  steps++;
  try {
    await body();
  } catch (e: any) {
    failures.push(name);
    console.log(`not ok - ${name}: ${e?.message ?? e}`);
    if (e?.status !== undefined) console.log(`  # sdk error ${JSON.stringify({ status: e.status, method: e.method, endpoint: e.endpoint, body: e.body })}`);
    for (const x of exchanges) console.log(`  # ${x.method} ${x.url} ${x.request ?? ""} -> ${x.status ?? "(no answer)"} ${x.response ?? ""}`);
  }
}

async function fails(what: string, p: Promise<unknown>, status: number) {
  try {
    await p;
  } catch (e: any) {
    check(`${what} (${e?.status ?? e?.message})`, e?.status === status);
    return;
  }
  check(`${what}: should have failed with ${status}`, false);
}

// A bearer JWT for `sub` of `org`, HS256 (what an auth provider issues).
const b64 = (v: string | Buffer) => Buffer.from(v).toString("base64url");
function jwt(sub: string, org: string): string {
  const head = b64(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64(JSON.stringify({ sub, org_id: org, exp: Math.floor(Date.now() / 1000) + 3600 }));
  const sig = createHmac("sha256", SECRET).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

// One SDK client per end user, configured as an app would.
const run = randomUUID().slice(0, 8);
const org = `sdk-chat-org-${run}`;
const otherOrg = `sdk-chat-other-${run}`;
const ids = { alice: `alice-${run}`, bob: `bob-${run}`, dave: `dave-${run}`, carol: `carol-${run}` };
const as = (user: string, organization: string) =>
  (createClient({ url: BASE, key: KEY, client: CLIENT, auth: false, chat: { bearerToken: jwt(user, organization) } } as any) as any).chat;
const alice = as(ids.alice, org);
const bob = as(ids.bob, org);
const dave = as(ids.dave, org);
const carol = as(ids.carol, otherOrg);

const iso = (v: unknown) => typeof v === "string" && !Number.isNaN(Date.parse(v));

// ---- rooms ------------------------------------------------------------------
let room = "";
await step("room.create (group, envelope)", async () => {
  const res = await alice.room.create({ kind: "group", title: "sdk team", member_user_ids: [ids.bob] });
  room = res.data.id;
  check("room.create: the envelope", res.status === "success" && typeof res.message === "string");
  check("room.create: the room", res.data.kind === "group" && res.data.title === "sdk team" && res.data.created_by === ids.alice && res.data.organization_id === org && res.data.last_message_seq === 0 && res.data.version === 1 && iso(res.data.created_at));
});
if (!room) {
  console.log(`1..${steps}\n# no room: stopping`);
  process.exit(1);
}

await step("room.get (a member; another organization 404)", async () => {
  const got = await bob.room.get(room);
  check("room.get: the member reads the room", got.id === room && got.title === "sdk team" && got.kind === "group");
  await fails("room.get: another organization's user", carol.room.get(room), 404);
  await fails("room.get: a user of the organization who is no member", dave.room.get(room), 403);
});

await step("room.update (title, version bumped)", async () => {
  const updated = await alice.room.update(room, { title: "sdk team renamed" });
  check("room.update: the new title and version", updated.title === "sdk team renamed" && updated.version === 2);
  check("room.update: read back by the other member", (await bob.room.get(room)).title === "sdk team renamed");
  await fails("room.update: a plain member may not rename", bob.room.update(room, { title: "nope" }), 403);
});

let second = "";
await step("room.list (limit/offset; the other organization sees nothing)", async () => {
  second = (await alice.room.create({ kind: "channel", title: "sdk channel" })).data.id;
  const all = await alice.room.list();
  const mine = all.items.map((r: any) => r.id);
  check("room.list: both rooms of alice", Array.isArray(all.items) && mine.includes(room) && mine.includes(second));
  const one = await alice.room.list({ limit: 1 });
  const next = await alice.room.list({ limit: 1, offset: 1 });
  check("room.list: limit 1 and offset 1 page through", one.items.length === 1 && next.items.length === 1 && one.items[0].id !== next.items[0].id);
  const bobs = (await bob.room.list()).items.map((r: any) => r.id);
  check("room.list: bob sees the group, not alice's channel", bobs.includes(room) && !bobs.includes(second));
  check("room.list: the other organization sees nothing", (await carol.room.list()).items.length === 0);
});

await step("room.resolveDirect (twice, concurrently: one dm)", async () => {
  const pair: [string, string] = [ids.alice, ids.bob];
  const [a, b] = await Promise.all([alice.room.resolveDirect({ participant_user_ids: pair }), bob.room.resolveDirect({ participant_user_ids: [ids.bob, ids.alice] })]);
  check("resolveDirect: a dm, the same room for both", a.kind === "dm" && a.id === b.id && a.organization_id === org);
  const again = await alice.room.resolveDirect({ participant_user_ids: pair });
  check("resolveDirect: resolved again, still the same room", again.id === a.id);
  const members = (await bob.room.member.list(a.id)).map((m: any) => m.user_id).sort();
  check("resolveDirect: the dm has exactly the two", members.length === 2 && members.includes(ids.alice) && members.includes(ids.bob));
  const dms = (await alice.room.list()).items.filter((r: any) => r.kind === "dm");
  check("resolveDirect: one dm listed", dms.length === 1 && dms[0].id === a.id);
  await fails("resolveDirect: a pair without the caller (bad input)", carol.room.resolveDirect({ participant_user_ids: [ids.alice, ids.bob] }), 400);
});

// ---- messages -------------------------------------------------------------
let first: any;
await step("room.message.send twice with one client_message_id → one message", async () => {
  const body = { body_text: `hello sdk kumquat ${run}`, client_message_id: `cid-${run}` };
  const a = await alice.room.message.send(room, body);
  const b = await alice.room.message.send(room, body);
  first = a.data;
  check("send: the envelope", a.status === "success" && b.status === "success");
  check("send: the same message twice", a.data.id === b.data.id && a.data.room_seq === 1 && b.data.room_seq === 1);
  check("send: the message", a.data.body_text === body.body_text && a.data.sender_id === ids.alice && a.data.client_message_id === body.client_message_id && Array.isArray(a.data.attachments) && Array.isArray(a.data.reactions));
  const page = await bob.room.message.list(room);
  check("send: one message stored", page.items.length === 1 && page.items[0].id === a.data.id);
  const r = await bob.room.get(room);
  check("send: the room's last_message_*", r.last_message_seq === 1 && r.last_message_id === a.data.id && iso(r.last_message_at));
  await fails("send: the same client_message_id with another body", alice.room.message.send(room, { ...body, body_text: "another" }), 409);
  await fails("send: another organization", carol.room.message.send(room, { body_text: "x" }), 404);
});

const sent: any[] = [];
await step("room.message.send (more, both members; reply, body_json)", async () => {
  for (let i = 2; i <= 6; i++) {
    const who = i % 2 ? alice : bob;
    const res = await who.room.message.send(room, { body_text: `message ${i}`, reply_to_message_id: i === 2 ? first?.id : undefined, body_json: i === 3 ? { n: i } : undefined });
    sent.push(res.data);
  }
  check("send: consecutive room_seq 2..6", sent.map((m) => m.room_seq).join() === "2,3,4,5,6");
  check("send: reply_to_message_id and body_json kept", sent[0].reply_to_message_id === first?.id && sent[1].body_json?.n === 3);
});

await step("room.message.list (paging by next_before_seq, after_seq)", async () => {
  const seqs: number[] = [];
  let before: number | undefined;
  let pages = 0;
  for (;;) {
    const page = await bob.room.message.list(room, { limit: 2, ...(before ? { before_seq: before } : {}) });
    pages++;
    const s = page.items.map((m: any) => m.room_seq);
    check(`list page ${pages}: ascending ${s}`, s.length > 0 && s.every((v: number, i: number) => i === 0 || v > s[i - 1]));
    seqs.unshift(...s);
    if (page.next_before_seq == null) break;
    check(`list page ${pages}: next_before_seq is the page's first seq`, page.next_before_seq === s[0]);
    before = page.next_before_seq;
    if (pages > 10) throw new Error("paging does not end");
  }
  check("list: every message once, in order, 1..6", seqs.join() === "1,2,3,4,5,6" && pages === 3);
  const after = await alice.room.message.list(room, { after_seq: 4, limit: 50 });
  check("list: after_seq 4 → 5, 6", after.items.map((m: any) => m.room_seq).join() === "5,6");
  await fails("list: another organization", carol.room.message.list(room), 404);
});

await step("room.message.update (the sender edits; another may not)", async () => {
  const mine = sent[1]; // alice's (seq 3)
  const edited = await alice.room.message.update(room, mine.id, { body_text: `edited pomelo ${run}` });
  check("update: the new body and edited_at", edited.id === mine.id && edited.body_text === `edited pomelo ${run}` && iso(edited.edited_at) && edited.room_seq === 3);
  const page = await bob.room.message.list(room, { after_seq: 2, limit: 1 });
  check("update: read back by the other member", page.items[0].body_text === `edited pomelo ${run}`);
  await fails("update: bob edits alice's message", bob.room.message.update(room, mine.id, { body_text: "x" }), 403);
});

// ---- reactions, cursor, search ---------------------------------------------------
await step("message.reaction.add/remove (summary with reacted)", async () => {
  const id = first.id;
  const one = await bob.message.reaction.add(id, { emoji: "👍" });
  check("reaction.add: bob's", one.message_id === id && one.reactions.length === 1 && one.reactions[0].emoji === "👍" && one.reactions[0].count === 1 && one.reactions[0].reacted === true);
  const again = await bob.message.reaction.add(id, { emoji: "👍" });
  check("reaction.add: again changes nothing", again.reactions[0].count === 1);
  const two = await alice.message.reaction.add(id, { emoji: "👍" });
  check("reaction.add: alice's too", two.reactions[0].count === 2 && two.reactions[0].reacted === true);
  const page = await alice.room.message.list(room, { limit: 50 });
  const seen = page.items.find((m: any) => m.id === id);
  check("reaction: the message lists its reactions", seen?.reactions?.[0]?.count === 2 && seen.reactions[0].reacted === true);
  const removed = await bob.message.reaction.remove(id, "👍");
  check("reaction.remove: count 1, not bob's", removed.reactions[0].count === 1 && removed.reactions[0].reacted === false);
  await fails("reaction.remove: bob has none left", bob.message.reaction.remove(id, "👍"), 404);
  await fails("reaction.add: another organization", carol.message.reaction.add(id, { emoji: "👍" }), 404);
});

await step("room.readCursor.upTo (seq, message_id; only forward)", async () => {
  const c = await bob.room.readCursor.upTo(room, { seq: 4 });
  check("readCursor: seq 4", c.room_id === room && c.user_id === ids.bob && c.last_read_seq === 4);
  const back = await bob.room.readCursor.upTo(room, { seq: 2 });
  check("readCursor: never backwards", back.last_read_seq === 4);
  const last = sent[sent.length - 1];
  const byId = await bob.room.readCursor.upTo(room, { message_id: last.id });
  check("readCursor: by message_id", byId.last_read_seq === last.room_seq && byId.last_read_message_id === last.id);
  const me = (await bob.room.member.list(room)).find((m: any) => m.user_id === ids.bob);
  check("readCursor: read back on the member", me?.last_read_seq === last.room_seq);
});

await step("message.search (full text, within the user's rooms)", async () => {
  const hits = await bob.message.search({ query: `kumquat ${run}` });
  check("search: finds the message", hits.items.length === 1 && hits.items[0].room_id === room && hits.items[0].message.id === first.id);
  const edited = await alice.message.search({ query: "pomelo", room_id: room, limit: 5 });
  check("search: the edited text, in one room", edited.items.length === 1 && edited.items[0].message.room_seq === 3);
  check("search: the other organization finds nothing", (await carol.message.search({ query: "kumquat" })).items.length === 0);
});

// ---- members -------------------------------------------------------------------
await step("room.member.list/add/remove", async () => {
  const members = await alice.room.member.list(room);
  const role = (u: string) => members.find((m: any) => m.user_id === u)?.role;
  check("member.list: alice owner, bob member", members.length === 2 && role(ids.alice) === "owner" && role(ids.bob) === "member" && members.every((m: any) => m.room_id === room && iso(m.joined_at)));
  const added = await alice.room.member.add(room, { user_ids: [ids.dave], role: "member" });
  check("member.add: dave listed", Array.isArray(added) && added.some((m: any) => m.user_id === ids.dave && m.role === "member"));
  const again = await alice.room.member.add(room, { user_ids: [ids.dave] });
  check("member.add: again, idempotent", again.filter((m: any) => m.user_id === ids.dave).length === 1);
  check("member.add: dave now reads the room", (await dave.room.get(room)).id === room);
  await fails("member.add: a plain member may not", bob.room.member.add(room, { user_ids: ["someone"] }), 403);
  const removed = await alice.room.member.remove(room, ids.dave);
  check("member.remove: the result", removed.ok === true && removed.user_id === ids.dave);
  await fails("member.remove: dave loses access on the next request", dave.room.message.list(room), 403);
  await fails("member.remove: not a member any more", alice.room.member.remove(room, ids.dave), 404);
});

await step("room.message.delete (soft; the order of the rest kept)", async () => {
  const victim = sent[2]; // seq 4, bob's
  const res = await bob.room.message.delete(room, victim.id);
  check("delete: the result", res.ok === true && res.message_id === victim.id);
  const page = await alice.room.message.list(room, { limit: 50 });
  check("delete: seqs kept 1..6", page.items.map((m: any) => m.room_seq).join() === "1,2,3,4,5,6");
  const gone = page.items.find((m: any) => m.id === victim.id);
  check("delete: bodies cleared, deleted_at set", gone && gone.body_text == null && iso(gone.deleted_at));
  await fails("delete: bob deletes alice's message", bob.room.message.delete(room, first.id), 403);
  await fails("update: a deleted message", bob.room.message.update(room, victim.id, { body_text: "back" }), 409);
});

await step("room.archive (owner; hidden unless include_archived; no more sends)", async () => {
  await fails("archive: a plain member may not", bob.room.archive(room), 403);
  const archived = await alice.room.archive(room);
  check("archive: archived_at set, version bumped", archived.id === room && iso(archived.archived_at) && archived.version === 3);
  const listed = (await alice.room.list()).items.map((r: any) => r.id);
  const all = (await alice.room.list({ include_archived: true })).items.map((r: any) => r.id);
  check("archive: listed only with include_archived", !listed.includes(room) && all.includes(room));
  await fails("archive: no new message", alice.room.message.send(room, { body_text: "late" }), 409);
});

// ---- realtime info -------------------------------------------------------------
await step("realtime.info (GET /wss/info)", async () => {
  const info = await alice.realtime.info();
  check("realtime.info: the announcement", info.status === "success" && info.data?.transport === "wss" && info.data?.path === "/wss/gateway" && (info.data as any)?.state === "disabled" && Array.isArray(info.data?.actions));
});

console.log(`1..${steps}`);
if (failures.length) {
  console.log(`# failed: ${failures.join("; ")}`);
  process.exit(1);
}
console.log(`# all ${steps} steps passed`);

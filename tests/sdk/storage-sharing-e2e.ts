// Managed files through the unmodified athena-js SDK: upload, list filters and
// paging, search, grants (grant → the colleague reads → revoke → gone), check,
// audit, folders (list, tree, move, delete). The admin key names the end users
// with the SDK's userId/organizationId options; run from an athena-js checkout
// (README).
import { createClient } from "./src/v3-client.ts";

const BASE = process.env.ATHENA_URL!;
const KEY = process.env.ATHENA_API_KEY!;
const CLIENT = process.env.ATHENA_CLIENT ?? "local";
const S3 = {
  endpoint: process.env.S3_ENDPOINT!,
  access_key_id: process.env.S3_ACCESS_KEY_ID!,
  secret_key: process.env.S3_SECRET_ACCESS_KEY!,
};

function check(what: string, ok: unknown) {
  if (!ok) throw new Error(`FAILED: ${what}`);
  console.log(`ok - ${what}`);
}

async function fails(what: string, p: Promise<unknown>, status: number) {
  try {
    await p;
  } catch (e: any) {
    const s = e?.status ?? e?.statusCode ?? e?.response?.status;
    check(`${what} (${s ?? e?.message})`, s === status || String(e?.message ?? "").includes(String(status)));
    return;
  }
  check(`${what}: should have failed`, false);
}

const athena: any = createClient({ db: { url: BASE }, storage: { url: `${BASE}/storage` }, key: KEY, client: CLIENT, auth: false } as any);
const st = athena.storage;
const alice = { userId: "sdk-alice", organizationId: "sdk-org" };
const bob = { userId: "sdk-bob", organizationId: "sdk-elsewhere" };
const bucket = `sdk-share-${Date.now()}`;

const cat = await st.catalog.create({ name: bucket, endpoint: S3.endpoint, region: "us-east-1", bucket, access_key_id: S3.access_key_id, secret_key: S3.secret_key, provider: "custom_s3" });
await st.bucket.create({ s3_id: cat.id, bucket });
const ids: Record<string, string> = {};
for (const key of ["team/a.txt", "team/b.txt", "team/sub/c.txt"]) {
  const up = await st.file.upload({ s3_id: cat.id, storage_key: key, content_type: "text/plain" }, alice);
  // The signed Content-Type, stated (upload-url's answer loses `upload.headers` today).
  const put = await up.upload.put(`bytes of ${key}`, { headers: { "Content-Type": "text/plain" } });
  check(`file.upload + put ${key}`, put.ok ?? true);
  const confirmed = await st.file.confirmUpload(up.file.id, {}, alice);
  check(`file.confirmUpload ${key}`, confirmed.file.status === "available");
  ids[key] = up.file.id;
}

const page = await st.file.list({ s3_id: cat.id, prefix: "team/", limit: 2 }, alice);
check("file.list limit 2 → has_more", page.count === 2 && page.has_more === true && page.next_offset === 2);
const rest = await st.file.list({ s3_id: cat.id, prefix: "team/", limit: 2, offset: 2 }, alice);
check("file.list offset 2", rest.count === 1 && rest.has_more === false);
const found = await st.file.search({ s3_id: cat.id, query: "B.TXT" }, alice);
check("file.search query", found.count === 1 && found.files[0].storage_key === "team/b.txt");
const none = await st.file.search({ s3_id: cat.id, query: "txt" }, bob);
check("file.search: another organization sees nothing", none.count === 0);

const a = ids["team/a.txt"];
await st.permission.grant({ file_id: a, principal_type: "user", principal_id: "sdk-bob", permission: "read" }, alice);
check("permission.grant → the colleague reads", (await st.file.get(a, bob)).file.id === a);
const chk = await st.permission.check({ file_id: a, permission: "write" }, bob);
check("permission.check", chk.allowed === false && chk.permission === "write");
const perms = await st.permission.list({ file_id: a }, alice);
check("permission.list", perms.count === 2 && perms.permissions.some((p: any) => p.principal_id === "sdk-bob"));
await st.permission.revoke({ file_id: a, principal_type: "user", principal_id: "sdk-bob", permission: "read" }, alice);
await fails("permission.revoke → the colleague gets 404", st.file.get(a, bob), 404);
const audit = await st.audit.list({ file_id: a, limit: 50 }, alice);
check("audit.list", audit.events.some((e: any) => e.operation === "permission_revoke" && e.status === "success"));

const folders = await st.folder.list({ s3_id: cat.id, prefix: "team/" }, alice);
check("folder.list", folders.folders.length === 1 && folders.folders[0].prefix === "team/sub/");
const tree = await st.folder.tree({ s3_id: cat.id, prefix: "" }, alice);
check("folder.tree", tree.tree.total_files === 3);
const moved = await st.folder.move({ s3_id: cat.id, from_prefix: "team/sub/", to_prefix: "archive/" }, alice);
check("folder.move", moved.processed_files === 1);
check("folder.move: same file at the new key", (await st.file.get(ids["team/sub/c.txt"], alice)).file.storage_key === "archive/c.txt");
await fails("folder.delete by another organization", st.folder.delete({ s3_id: cat.id, prefix: "team/" }, bob), 404);
const deleted = await st.folder.delete({ s3_id: cat.id, prefix: "team/" }, alice);
check("folder.delete", deleted.processed_files === 2);
await fails("folder.delete: files gone", st.file.get(a, alice), 404);
check("folder.delete: objects gone", !(await st.object.exists({ s3_id: cat.id, bucket, key: "team/a.txt" })).exists);
console.log("all passed");

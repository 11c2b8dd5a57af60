// Managed files through the unmodified athena-js SDK's file helpers: the
// `file` facade (`upload` by one presigned PUT, `upload` with `forceMultipart`
// in two parts, `list`, `download` through the proxy, `delete`), the base
// helpers (`createStorageUploadUrl(s)`, `getStorageFileUrl`,
// `setStorageFileVisibility`, `updateStorageFile` as a move,
// `listStorageFiles`), and the canonical service namespaces (`files.upload/
// list/get/move/setVisibility/delete/restore/purge`, `permissions.grant/list/
// revoke`) with the admin key acting for an organization. End users are named
// with the SDK's `userId`/`organizationId` call options (X-User-Id /
// X-Organization-Id, trusted from the admin key). Every step checks its effect
// (the same bytes back, a listing holding or omitting the file); a failing step
// prints the SDK's error and the last HTTP exchanges, the others still run, and
// the exit status is 1. Run from an athena-js checkout (README).
import { createClient } from "./src/v3-client.ts";

const BASE = process.env.ATHENA_URL!;
const KEY = process.env.ATHENA_API_KEY!;
const CLIENT = process.env.ATHENA_CLIENT ?? "local";
const S3 = {
  endpoint: process.env.S3_ENDPOINT!,
  access_key_id: process.env.S3_ACCESS_KEY_ID!,
  secret_key: process.env.S3_SECRET_ACCESS_KEY!,
};

// The last HTTP exchanges (diagnostics only: the SDK's own fetch, observed).
type Exchange = { method: string; url: string; request?: string; status?: number; response?: string };
const exchanges: Exchange[] = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input: any, init?: any) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const ex: Exchange = { method: init?.method ?? "GET", url };
  if (typeof init?.body === "string") ex.request = init.body.slice(0, 600);
  else if (init?.body) ex.request = `<${init.body?.constructor?.name ?? "body"} ${init.body?.size ?? init.body?.byteLength ?? "?"} bytes>`;
  exchanges.push(ex);
  if (exchanges.length > 6) exchanges.shift();
  const res = await realFetch(input, init);
  ex.status = res.status;
  const type = res.headers.get("content-type") ?? "";
  if (type.includes("json") || type.includes("xml") || !res.ok) ex.response = (await res.clone().text()).slice(0, 600);
  return res;
};

function check(what: string, ok: unknown) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

const failures: string[] = [];
async function step(name: string, body: () => Promise<void>) {
  exchanges.length = 0;
  try {
    await body();
  } catch (e: any) {
    failures.push(name);
    console.log(`not ok - ${name}: ${e?.message ?? e}`);
    const detail = { code: e?.code, status: e?.status, method: e?.method, endpoint: e?.endpoint, raw: e?.raw };
    if (detail.status !== undefined || detail.code) console.log(`  # sdk error ${JSON.stringify(detail)}`);
    for (const x of exchanges) console.log(`  # ${x.method} ${x.url} ${x.request ?? ""} -> ${x.status ?? "(no answer)"} ${x.response ?? ""}`);
  }
}

async function fails(what: string, p: Promise<unknown>, status: number) {
  try {
    await p;
  } catch (e: any) {
    const s = e?.status ?? e?.statusCode ?? e?.response?.status;
    check(`${what} (${s ?? e?.message})`, s === status);
    return;
  }
  check(`${what}: should have failed with ${status}`, false);
}

const bytesOf = async (r: Response) => new Uint8Array(await r.arrayBuffer());
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);
const text = (s: string) => new TextEncoder().encode(s);

const athena: any = createClient({ db: { url: BASE }, storage: { url: `${BASE}/storage` }, key: KEY, client: CLIENT, auth: false } as any);
const st = athena.storage;
const alice = { userId: "sdk-files-alice", organizationId: "sdk-files-org" };
const bob = { userId: "sdk-files-bob", organizationId: "sdk-files-elsewhere" };
const service = { organizationId: "sdk-files-org" };
const bucket = `sdk-files-${Date.now()}`;
let cat: any;

await step("setup: catalog + bucket", async () => {
  cat = await st.catalog.create({ name: bucket, endpoint: S3.endpoint, region: "us-east-1", bucket, access_key_id: S3.access_key_id, secret_key: S3.secret_key, provider: "custom_s3" });
  await st.bucket.create({ s3_id: cat.id, bucket });
  check("setup: catalog + bucket", cat.id);
});
if (!cat?.id) process.exit(1);
const s3_id = cat.id;
// The bytes of an object, through the catalog's presigned GET (admin, not the managed file).
const objectBytes = async (key: string) => bytesOf(await fetch((await st.object.url({ s3_id, bucket, key })).url));

// ---- the file facade ------------------------------------------------------
const single = new Blob(["single PUT bytes through the sdk"], { type: "text/plain" });
const singleBytes = new Uint8Array(await single.arrayBuffer());
let singleId = "";
await step("file.upload (one presigned PUT)", async () => {
  const phases: string[] = [];
  const res = await st.file.upload({ s3_id, files: single, fileName: "single.txt", storage_key: "docs/single.txt", onProgress: (p: any) => phases.push(p.phase) }, alice);
  singleId = res.files[0].file.id;
  check("file.upload (one presigned PUT)", res.count === 1 && res.files[0].response.ok && res.files[0].storage_key === "docs/single.txt" && phases.at(-1) === "complete");
  check("file.upload: the object holds the bytes", same(await objectBytes("docs/single.txt"), singleBytes));
});

const MiB = 1024 * 1024;
const big = new Uint8Array(6 * MiB + 123);
for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 13)) & 0xff;
let bigId = "";
await step("file.upload forceMultipart (2 parts of ≥ 5 MiB + rest)", async () => {
  const parts = new Set<number>();
  let partCount = 0;
  const res = await st.file.upload(
    {
      s3_id,
      files: big,
      fileName: "big.bin",
      storage_key: "docs/big.bin",
      content_type: "application/octet-stream",
      forceMultipart: true,
      multipartPartSizeBytes: 5 * MiB,
      onProgress: (p: any) => {
        if (p.multipart) {
          parts.add(p.multipart.partNumber);
          partCount = p.multipart.partCount;
        }
      },
    },
    alice,
  );
  bigId = res.files[0].file.id;
  check("file.upload forceMultipart: 2 parts", res.count === 1 && partCount === 2 && parts.has(1) && parts.has(2));
  check("file.upload forceMultipart: the file is available", res.files[0].file.status === "available");
  check("file.upload forceMultipart: the object has every byte", same(await objectBytes("docs/big.bin"), big));
});

let multiId = "";
await step("file.uploadMultipart (explicit)", async () => {
  const res = await st.file.uploadMultipart({ s3_id, files: big.slice(0, 5 * MiB + 7), fileName: "multi.bin", storage_key: "docs/multi.bin", content_type: "application/octet-stream", multipartPartSizeBytes: 5 * MiB }, alice);
  multiId = res.files[0].file.id;
  check("file.uploadMultipart", res.count === 1 && res.files[0].file.status === "available");
});

await step("file.list", async () => {
  const page = await st.file.list({ s3_id, prefix: "docs/" }, alice);
  const keys = page.files.map((f: any) => f.storage_key);
  check(`file.list holds the uploads (${keys.join(", ")})`, [singleId, bigId, multiId].filter(Boolean).every((id) => page.files.some((f: any) => f.id === id)));
  const other = await st.file.list({ s3_id, prefix: "docs/" }, bob);
  check("file.list: another organization sees none", other.files.length === 0);
});

await step("file.download (proxy) of the single PUT", async () => {
  const res = await st.file.download(singleId, undefined, alice);
  check("file.download: same bytes", same(await bytesOf(res), singleBytes));
});
await step("file.download (proxy) of the multipart upload", async () => {
  const res = await st.file.download({ fileId: bigId }, alice);
  check("file.download: same 6 MiB", same(await bytesOf(res), big));
});
await step("file.download of another organization's file", async () => {
  await fails("file.download by another organization", st.file.download(singleId, undefined, bob), 404);
});

// ---- the base helpers -----------------------------------------------------
let baseA = "";
let baseB = "";
let baseC = "";
await step("createStorageUploadUrl + PUT", async () => {
  const body = text("base helper A");
  const up = await st.createStorageUploadUrl({ s3_id, storage_key: "base/a.txt", content_type: "text/plain", size_bytes: body.length, name: "a.txt" }, alice);
  baseA = up.file.id;
  check("createStorageUploadUrl: a file and a URL", up.file.storage_key === "base/a.txt" && up.upload.url.startsWith("http"));
  const headers = new Headers(up.upload.headers ?? {});
  if (!headers.has("content-type")) headers.set("content-type", "text/plain");
  const put = await fetch(up.upload.url, { method: "PUT", headers, body });
  check("createStorageUploadUrl: PUT to its URL", put.ok);
  // The low-level flow's documented finalize step (the facade has none).
  const confirmed = await st.file.confirmUpload(baseA, {}, alice);
  check("createStorageUploadUrl: file.confirmUpload → available", confirmed.file.status === "available" && confirmed.file.size_bytes === body.length);
});
await step("createStorageUploadUrls + PUTs", async () => {
  const b = text("base helper B");
  const c = text("base helper C, the third");
  const ups = await st.createStorageUploadUrls(
    { files: [
      { s3_id, storage_key: "base/b.txt", content_type: "text/plain", size_bytes: b.length },
      { s3_id, storage_key: "base/c.txt", content_type: "text/plain", size_bytes: c.length },
    ] },
    alice,
  );
  check("createStorageUploadUrls: two files", ups.files.length === 2 && ups.files[0].file.storage_key === "base/b.txt" && ups.files[1].file.storage_key === "base/c.txt");
  [baseB, baseC] = ups.files.map((f: any) => f.file.id);
  for (const [i, body] of [b, c].entries()) {
    const headers = new Headers(ups.files[i].upload.headers ?? {});
    if (!headers.has("content-type")) headers.set("content-type", "text/plain");
    const put = await fetch(ups.files[i].upload.url, { method: "PUT", headers, body });
    check(`createStorageUploadUrls: PUT ${i + 1}`, put.ok);
    const confirmed = await st.file.confirmUpload(ups.files[i].file.id, {}, alice);
    check(`createStorageUploadUrls: confirmUpload ${i + 1}`, confirmed.file.status === "available");
  }
});
await step("getStorageFileUrl + GET", async () => {
  const url = await st.getStorageFileUrl(baseA, undefined, alice);
  const got = await (await fetch(url.url)).text();
  check("getStorageFileUrl: GET answers the bytes", got === "base helper A");
});
const carol = { userId: "sdk-files-carol", organizationId: "sdk-files-org" };
await step("setStorageFileVisibility {visibility: organization}", async () => {
  await fails("before: a colleague gets 404", st.file.get(baseA, carol), 404);
  const res = await st.setStorageFileVisibility(baseA, { visibility: "organization" }, alice);
  check("setStorageFileVisibility {visibility}: answered", res.file.visibility === "organization");
  const list = await st.listStorageFiles({ s3_id, prefix: "base/", visibility: "organization" }, alice);
  check("setStorageFileVisibility {visibility}: listing by visibility", list.files.length === 1 && list.files[0].id === baseA);
  check("setStorageFileVisibility {visibility}: a colleague reads it", (await st.file.get(baseA, carol)).file.id === baseA);
});
await step("file.visibility.set (POST) {visibility: organization}", async () => {
  const res = await st.file.visibility.set(baseC, { visibility: "organization" }, alice);
  check("file.visibility.set {visibility}: answered", res.file.visibility === "organization");
  check("file.visibility.set {visibility}: a colleague reads it", (await st.file.get(baseC, carol)).file.id === baseC);
});
await step("setStorageFileVisibility {public}", async () => {
  const res = await st.setStorageFileVisibility(baseA, { public: true }, alice);
  check("setStorageFileVisibility {public: true}", res.file.visibility === "public" && res.file.is_public === true);
  check("setStorageFileVisibility {public: true}: another organization reads it", (await st.file.get(baseA, bob)).file.id === baseA);
  const list = await st.listStorageFiles({ s3_id, prefix: "base/", visibility: "public" }, alice);
  check("setStorageFileVisibility {public: true}: listing by visibility", list.files.length === 1 && list.files[0].id === baseA);
  const back = await st.setStorageFileVisibility(baseA, { public: false }, alice);
  check("setStorageFileVisibility {public: false}", back.file.visibility === "private" && back.file.is_public === false);
  await fails("setStorageFileVisibility {public: false}: another organization gets 404", st.file.get(baseA, bob), 404);
});
await step("updateStorageFile (move)", async () => {
  const res = await st.updateStorageFile(baseB, { storage_key: "base/moved/b.txt" }, alice);
  check("updateStorageFile: the new key", res.file.storage_key === "base/moved/b.txt");
  const got = await bytesOf(await st.getStorageFileProxy(baseB, undefined, alice));
  check("updateStorageFile: the bytes at the new key", same(got, text("base helper B")));
  check("updateStorageFile: the old object is gone", !(await st.object.exists({ s3_id, bucket, key: "base/b.txt" })).exists);
});
await step("listStorageFiles", async () => {
  const list = await st.listStorageFiles({ s3_id, prefix: "base/" }, alice);
  const keys = list.files.map((f: any) => f.storage_key).sort();
  check(`listStorageFiles (${keys.join(", ")})`, keys.includes("base/a.txt") && keys.includes("base/moved/b.txt") && keys.includes("base/c.txt") && !keys.includes("base/b.txt"));
});

// ---- file.delete ----------------------------------------------------------
await step("file.delete (one id)", async () => {
  await st.file.delete(singleId, alice);
  const list = await st.file.list({ s3_id, prefix: "docs/" }, alice);
  check("file.delete: the listing omits it", !list.files.some((f: any) => f.id === singleId) && list.files.some((f: any) => f.id === bigId));
  await fails("file.delete: the download is gone", st.file.download(singleId, undefined, alice), 404);
});
await step("file.delete (many ids)", async () => {
  const res = await st.file.delete([bigId, multiId, baseA, baseB, baseC].filter(Boolean), alice);
  check("file.delete many: answered each", Array.isArray(res) && res.length === [bigId, multiId, baseA, baseB, baseC].filter(Boolean).length);
  const list = await st.listStorageFiles({ s3_id, prefix: "" }, alice);
  check("file.delete many: the listing is empty", list.files.length === 0);
});

// ---- the canonical service namespaces (admin key + X-Organization-Id) -----
const svcBytes = text("canonical service upload");
let svcId = "";
await step("files.upload", async () => {
  const f = await st.files.upload({ body: svcBytes, bucket, connectionId: s3_id, contentType: "text/plain", key: "svc/a.txt", idempotencyKey: "sdk-files-1" }, service);
  svcId = f.id;
  check("files.upload", f.id && f.key === "svc/a.txt" && f.sizeBytes === svcBytes.length && f.status === "available" && f.organizationId === service.organizationId);
  check("files.upload: the object holds the same bytes", same(await objectBytes("svc/a.txt"), svcBytes));
});
await step("files.list", async () => {
  const files = await st.files.list({ connectionId: s3_id, prefix: "svc/" }, service);
  check("files.list holds it", files.length === 1 && files[0].id === svcId);
  const elsewhere = await st.files.list({ connectionId: s3_id, prefix: "svc/" }, { organizationId: bob.organizationId });
  check("files.list: another organization sees none", elsewhere.length === 0);
});
await step("files.get", async () => {
  const f = await st.files.get(svcId, service);
  check("files.get", f.id === svcId && f.key === "svc/a.txt" && f.bucket === bucket && f.connectionId === s3_id);
  await fails("files.get by another organization", st.files.get(svcId, { organizationId: bob.organizationId }), 404);
});
await step("files.move", async () => {
  const f = await st.files.move(svcId, { destinationKey: "svc/moved/a.txt" }, service);
  check("files.move", f.id === svcId && f.key === "svc/moved/a.txt");
  check("files.move: the bytes at the new key", same(await objectBytes("svc/moved/a.txt"), svcBytes));
  check("files.move: the old object is gone", !(await st.object.exists({ s3_id, bucket, key: "svc/a.txt" })).exists);
});
await step("files.setVisibility", async () => {
  const f = await st.files.setVisibility(svcId, { visibility: "public" }, service);
  check("files.setVisibility", f.visibility === "public");
  check("files.setVisibility: read back", (await st.files.get(svcId, service)).visibility === "public");
  const back = await st.files.setVisibility(svcId, { visibility: "private" }, service);
  check("files.setVisibility back to private", back.visibility === "private");
});
await step("permissions.grant/list/revoke", async () => {
  await fails("before the grant: another user gets 404", st.file.get(svcId, bob), 404);
  const p = await st.permissions.grant(svcId, { action: "read", principalType: "user", principalId: bob.userId }, service);
  check("permissions.grant", p.fileId === svcId && p.action === "read" && p.principalId === bob.userId && p.principalType === "user");
  check("permissions.grant: the grantee reads", (await st.file.get(svcId, bob)).file.id === svcId);
  const perms = await st.permissions.list(svcId, service);
  check("permissions.list holds the grant", perms.some((x: any) => x.principalId === bob.userId && x.action === "read" && !x.revokedAt));
  const r = await st.permissions.revoke(svcId, { action: "read", principalType: "user", principalId: bob.userId }, service);
  check("permissions.revoke", r.fileId === svcId);
  const after = await st.permissions.list(svcId, service);
  check("permissions.list after revoke omits it", !after.some((x: any) => x.principalId === bob.userId && !x.revokedAt));
  await fails("permissions.revoke: the grantee gets 404", st.file.get(svcId, bob), 404);
});
await step("files.delete", async () => {
  const d = await st.files.delete(svcId, service);
  check("files.delete", d.id === svcId && d.status === "soft_deleted" && d.deletedAt);
  check("files.delete: the listing omits it", (await st.files.list({ connectionId: s3_id, prefix: "svc/" }, service)).length === 0);
  await fails("files.delete: get is 404", st.files.get(svcId, service), 404);
});
await step("files.restore right after files.delete (unversioned bucket)", async () => {
  // Issue 12: restore works while the object or a prior version exists,
  // else 400 — a delete removed the object and this bucket keeps no versions.
  await fails("files.restore with neither object nor prior version", st.files.restore(svcId, service), 400);
});
await step("files.restore once the object exists again", async () => {
  const already = await st.files.get(svcId, service).catch(() => null);
  if (already) return check("files.restore: done by the previous step", already.status === "available");
  // The server's documented precondition (README: restore needs the object or
  // a prior version): the bytes put back at the key through the catalog.
  const again = await st.object.uploadUrl({ s3_id, bucket, key: "svc/moved/a.txt", content_type: "text/plain" });
  check("object put back", (await fetch(again.url, { method: "PUT", headers: { "content-type": "text/plain" }, body: svcBytes })).ok);
  const r = await st.files.restore(svcId, service);
  check("files.restore", r.id === svcId && r.status === "available");
  check("files.restore: listed again", (await st.files.list({ connectionId: s3_id, prefix: "svc/" }, service)).some((f: any) => f.id === svcId));
  check("files.restore: get answers it", (await st.files.get(svcId, service)).status === "available");
});
await step("files.purge", async () => {
  const p = await st.files.purge(svcId, service);
  check("files.purge", p.fileId === svcId);
  await fails("files.purge: get is 404", st.files.get(svcId, service), 404);
  check("files.purge: the object is gone", !(await st.object.exists({ s3_id, bucket, key: "svc/moved/a.txt" })).exists);
});

await step("cleanup: bucket + catalog", async () => {
  const left = await st.object.list({ s3_id, bucket, prefix: "" });
  for (const o of left.objects ?? []) await st.object.delete({ s3_id, bucket, key: o.key });
  await st.bucket.delete({ s3_id, bucket });
  await st.catalog.delete(s3_id);
  check(`cleanup (${(left.objects ?? []).length} stray objects removed)`, true);
});

if (failures.length) {
  console.log(`storage files e2e: ${failures.length} step(s) failed: ${failures.join("; ")}`);
  process.exit(1);
}
console.log("storage files e2e: all passed");

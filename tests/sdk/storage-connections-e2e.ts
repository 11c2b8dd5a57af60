// Athena storage through the unmodified athena-js SDK (one base URL, an API key holding
// gateway.storage_proxy + storage.admin: connections) against a running server (README).
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

const athena: any = createClient({ url: BASE, key: KEY, client: CLIENT, auth: false } as any);
const st = athena.storage;
const bucket = `sdk-${Date.now()}`;

const providers = await st.providers.list();
check("providers.list", providers.some((p: any) => p.id === "aws_s3" || p.provider === "aws_s3"));
const cat = await st.connections.create({ name: bucket, provider: "minio", config: { bucket, endpoint: S3.endpoint, region: "us-east-1" }, credentials: { accessKeyId: S3.access_key_id, secretAccessKey: S3.secret_key } });
check("connections.create", cat.id && !JSON.stringify(cat).includes(S3.secret_key));
const tested = await st.connections.test({ name: bucket, provider: "minio", config: { bucket: "no-such-bucket-sdk", endpoint: S3.endpoint, region: "us-east-1" }, credentials: { accessKeyId: S3.access_key_id, secretAccessKey: S3.secret_key } }).then(() => "ok", (e: any) => e.status);
check("connections.test on an unknown bucket is a 404", tested === 404);
const conns = await st.connections.list();
check("connections.list", conns.some((c: any) => c.id === cat.id));
const sel = { s3_id: cat.id, bucket };
await st.bucket.create(sel);
const buckets = await st.bucket.list({ s3_id: cat.id });
check("bucket.create + list", JSON.stringify(buckets).includes(bucket));
const up = await st.object.uploadUrl({ ...sel, key: "sdk/hello.txt", content_type: "text/plain" });
const put = await fetch(up.url, { method: "PUT", headers: { "content-type": "text/plain" }, body: "hello from the sdk" });
check("object.uploadUrl + PUT", put.ok);
const head = await st.object.head({ ...sel, key: "sdk/hello.txt" });
check("object.head", head.size === 18);
const ex = await st.object.exists({ ...sel, key: "sdk/hello.txt" });
check("object.exists", ex.exists === true);
const v = await st.object.validate({ ...sel, key: "sdk/hello.txt", etag: head.etag });
check("object.validate", v.valid === true);
const url = await st.object.url({ ...sel, key: "sdk/hello.txt" });
const got = await (await fetch(url.url)).text();
check("object.url + GET", got === "hello from the sdk");
await st.object.copy({ ...sel, source_key: "sdk/hello.txt", destination_key: "sdk/copy.txt" });
const listed = await st.object.list({ ...sel, prefix: "sdk/" });
check("object.copy + list", listed.objects.length === 2);
await st.object.update({ ...sel, key: "sdk/copy.txt", metadata: { owner: "sdk" } });
check("object.update", (await st.object.head({ ...sel, key: "sdk/copy.txt" })).metadata.owner === "sdk");
await st.object.folder.create({ ...sel, prefix: "empty" });
await st.object.folder.rename({ ...sel, from_prefix: "sdk", to_prefix: "moved" });
check("folder.rename", (await st.object.list({ ...sel, prefix: "moved/" })).objects.length === 2);
const pub = await st.object.publicUrl({ ...sel, key: "moved/hello.txt" });
check("object.publicUrl", pub.url.endsWith(`/${bucket}/moved/hello.txt`));
const pp = await st.object.postPolicy({ ...sel, key: "form.txt", max_size: 100 });
check("object.postPolicy", pp.fields && pp.fields.policy);
const versions = await st.object.versions({ ...sel, key: "moved/hello.txt" });
check("object.versions", versions.versions.length >= 1);
await st.bucket.cors.set({ ...sel, rules: [{ allowed_origins: ["https://app.example"], allowed_methods: ["GET"] }] });
check("bucket.cors", (await st.bucket.cors.get(sel)).rules.length === 1);
await st.bucket.cors.delete(sel);
await st.bucket.lifecycle.set({ ...sel, rules: [{ prefix: "tmp/", expiration_days: 3 }] });
check("bucket.lifecycle", (await st.bucket.lifecycle.get(sel)).rules[0].expiration_days === 3);
await st.bucket.lifecycle.delete(sel);
await st.object.delete({ ...sel, key: "moved/copy.txt" });
const del = await st.object.folder.delete({ ...sel, prefix: "moved" });
check("object.delete + folder.delete", del.deleted === 1);
await st.object.folder.delete({ ...sel, prefix: "empty" });
await st.bucket.delete(sel);
check("bucket.delete", !JSON.stringify(await st.bucket.list({ s3_id: cat.id })).includes(bucket));
await st.connections.delete(cat.id);
check("connections.delete", !(await st.connections.list()).some((c: any) => c.id === cat.id));
console.log("storage e2e: all passed");

// The agent-workspace app in a real browser: Debian's headless Chromium driven by playwright-core.
// `connect-events app serve` (embedded backend) serves the built app and its API on 127.0.0.1; a
// fake workspace on http://localhost frames it and speaks the SDK's host protocol; a fake OpenID
// provider signs agents in through the app's popup (code + PKCE). Cases: the handshake, the happy
// path (number from the contact, shown masked, a number added to the request body ignored), a
// double click, a failing deny list (503, connection reset, no answer, then a retry), another agent's contact (403), a lost and an expired token (401, then sign in
// again), a chat, and a page on an origin the CSP does not allow, which cannot frame the app.
// Needs `cargo build --bin connect-events` and `npm --prefix handlers/web run build` (tests/run.sh).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startIdp, startStatic } from "./fakes.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const targetDir = process.env.CARGO_TARGET_DIR
  ? resolve(root, process.env.CARGO_TARGET_DIR)
  : join(root, "target");
const bin = join(targetDir, process.env.CONNECT_EVENTS_BIN_PROFILE || "debug", "connect-events");
const assets = join(root, "handlers", "web", "dist");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const artifacts = join(targetDir, "browser");

const INSTANCE = "8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64";
const CLIENT = "agent-app-client";
const CALLERS = { "c-1": "+14255550100", "c-2": "+14255550111", "c-3": "+14255550122", "c-4": "+14255550144" };
const TAMPERED = "+19995550100";
/** The numbers as digits: none may reach the page or the server's logs, however formatted. */
const DIGITS = [...Object.values(CALLERS), TAMPERED].map((n) => n.slice(2));

/** The phone numbers in `text` whose digits (separators dropped) hold one of ours. */
const numbersIn = (text) =>
  (text.match(/[+\d][\d\s().-]{6,}\d/g) ?? []).filter((run) => DIGITS.some((d) => run.replace(/\D/g, "").includes(d)));

let idp, host, server, serverLog, browser, appUrl, state;

function seed() {
  state = mkdtempSync(join(tmpdir(), "agent-app-browser-"));
  const contacts = join(state, "connect", "contacts");
  const users = join(state, "connect", "users");
  mkdirSync(contacts, { recursive: true });
  mkdirSync(users, { recursive: true });
  const contact = (id, channel, address) =>
    writeFileSync(
      join(contacts, `${id}.json`),
      JSON.stringify({
        Contact: {
          Id: id,
          Channel: channel,
          InitiationMethod: "INBOUND",
          CustomerEndpoint: { Type: "TELEPHONE_NUMBER", Address: address },
          AgentInfo: { Id: "u-a" },
        },
      }),
    );
  for (const [id, number] of Object.entries(CALLERS)) contact(id, "VOICE", number);
  contact("c-chat", "CHAT", "+14255550133");
  for (const [id, name] of [["u-a", "agent-a"], ["u-b", "agent-b"]]) {
    writeFileSync(join(users, `${id}.json`), JSON.stringify({ User: { Id: id, Username: name } }));
  }
}

async function startServer(hostPort) {
  assert.ok(existsSync(bin), `${bin} not found: run cargo build --bin connect-events first`);
  assert.ok(existsSync(join(assets, "index.html")), `${assets}: run npm --prefix handlers/web run build first`);
  const jwks = join(state, "jwks.json");
  writeFileSync(jwks, JSON.stringify(idp.jwks));
  const child = spawn(bin, ["app", "serve", "--addr", "127.0.0.1:0", "--assets", assets, "--state-dir", state], {
    env: {
      ...process.env,
      APP_JWKS_FILE: jwks,
      APP_JWT_ISSUER: idp.issuer,
      APP_JWT_AUDIENCE: CLIENT,
      APP_FRAME_ANCESTORS: `http://localhost:${hostPort}`,
      CONNECT_INSTANCE_ID: INSTANCE,
      RUST_LOG: "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  serverLog = "";
  child.stderr.on("data", (chunk) => (serverLog += chunk));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const line = await Promise.race([
    new Promise((resolve) => createInterface({ input: child.stdout }).once("line", resolve)),
    exited.then((code) => {
      throw new Error(`app serve exited (${code}): ${serverLog}`);
    }),
  ]);
  const url = line.replace(/^listening on /, "");
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  return { child, url, exited };
}

before(async () => {
  seed();
  idp = await startIdp({ clientId: CLIENT });
  host = await startStatic(new URL("./host/", import.meta.url));
  server = await startServer(host.port);
  appUrl = `${server.url}/app/`;
  assert.ok(existsSync(chromiumPath), `${chromiumPath} not found: apt-get install chromium`);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  server?.child.kill();
  await server?.exited;
  await idp?.close();
  await host?.close();
});

/** The fake workspace on `origin` (default the allowed one) with the app on `contact`. */
async function openWorkspace(contact, { origin = `http://localhost:${host.port}`, channel = "voice" } = {}) {
  const page = await browser.newPage({ viewport: { width: 460, height: 400 } });
  const api = [];
  page.on("response", (r) => {
    if (r.url().includes("/api/deny-list/flags")) api.push({ method: r.request().method(), status: r.status() });
  });
  const query = new URLSearchParams({ app: appUrl, contact, channel });
  await page.goto(`${origin}/host.html?${query}`);
  return { page, app: page.frameLocator("iframe"), api };
}

async function signIn(page, app, username) {
  const [popup] = await Promise.all([page.waitForEvent("popup"), app.locator("#signin").click()]);
  await popup.locator("#username").fill(username);
  await Promise.all([popup.waitForEvent("close"), popup.locator("#sign-in").click()]);
}

const hostLog = (page) => page.evaluate(() => window.hostLog);

async function assertNoNumber(app) {
  const text = await app.locator("body").innerText();
  assert.deepEqual(numbersIn(text), [], `the page shows a number in clear: ${text}`);
}

test("the app connects to the workspace with the SDK's handshake and gets its contact", async () => {
  const { page, app } = await openWorkspace("c-1");
  await app.locator("#contact").filter({ hasText: "Contact c-1" }).waitFor();
  await app.locator("#signin").waitFor();
  const log = await hostLog(page);
  // If these fail, @amazon-connect/app changed its host protocol: update tests/browser/host/host.js.
  assert.equal(log[0].type, "connect-app-host-init");
  assert.equal(log[0].sdkVersion, "1.0.11");
  assert.ok(log.some((m) => m.type === "appLifecycleHandlerCompleted" && m.stage === "create"), JSON.stringify(log));
  const channel = log.find((m) => m.type === "request" && m.command === "contact/getChannelType");
  assert.deepEqual([channel?.namespace, channel?.data?.contactId], ["aws.connect.contact", "c-1"]);
  await page.evaluate(() => window.hostDestroy());
  await page.waitForFunction(() => window.hostLog.some((m) => m.type === "appLifecycleHandlerCompleted" && m.stage === "destroy"));
  await page.close();
});

test("an agent flags the caller of their contact: the number comes from the contact and shows masked", async () => {
  const { page, app, api } = await openWorkspace("c-1");
  await signIn(page, app, "agent-a");
  await app.locator("#listed").filter({ hasText: "not listed" }).waitFor();
  assert.equal(await app.locator("#number").innerText(), "+14*******00");
  // Whatever the browser sends, the server takes the number from the contact.
  await page.route("**/api/deny-list/flags", (route) =>
    route.continue({ postData: JSON.stringify({ ...JSON.parse(route.request().postData()), number: TAMPERED }) }),
  );
  await app.locator("#reason").fill("abusive caller");
  await app.locator("#ttl").selectOption("30d");
  await app.locator("#flag-button").click();
  await app.locator("#listed").filter({ hasText: /^listed$/ }).waitFor();
  assert.match(await app.locator("#message").innerText(), /Caller flagged/);
  assert.match(await app.locator("#listing").innerText(), /abusive caller/);
  assert.ok(await app.locator("#flag").isHidden(), "a listed caller is not offered again");
  assert.deepEqual(api.map((r) => `${r.method} ${r.status}`), ["GET 200", "POST 201"]);
  await assertNoNumber(app);
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, "agent-app.png") });
  await page.close();
});

test("a double click flags once", async () => {
  const { page, app, api } = await openWorkspace("c-2");
  await signIn(page, app, "agent-a");
  await app.locator("#flag-button").dblclick();
  await app.locator("#listed").filter({ hasText: /^listed$/ }).waitFor();
  const posts = api.filter((r) => r.method === "POST");
  assert.deepEqual(posts.map((r) => r.status), [201], "one request, one entry");
  await page.close();
});

test("when the deny list fails the agent is told to try again, and the retry flags", async () => {
  const { page, app, api } = await openWorkspace("c-4");
  await signIn(page, app, "agent-a");
  await app.locator("#listed").filter({ hasText: "not listed" }).waitFor();
  await page.route("**/api/deny-list/flags", (route) => route.fulfill({ status: 503, contentType: "application/json", body: '{"error":"unavailable"}' }), { times: 1 });
  await app.locator("#flag-button").click();
  await app.locator("#message").filter({ hasText: "HTTP 503" }).waitFor();
  await page.route("**/api/deny-list/flags", (route) => route.abort("connectionreset"), { times: 1 });
  await app.locator("#flag-button").click();
  await app.locator("#message").filter({ hasText: "cannot be reached" }).waitFor();
  // A request that never answers ends after the app's timeout (15 s, run on a fake clock).
  await page.clock.install();
  await page.route("**/api/deny-list/flags", () => {}, { times: 1 });
  await app.locator("#flag-button").click();
  assert.ok(await app.locator("#flag-button").isDisabled(), "waiting for the answer");
  await page.clock.runFor(16_000);
  await app.locator("#message").filter({ hasText: "cannot be reached" }).waitFor();
  assert.ok(await app.locator("#flag-button").isEnabled());
  await page.clock.resume();
  await app.locator("#flag-button").click();
  await app.locator("#listed").filter({ hasText: /^listed$/ }).waitFor();
  assert.deepEqual(api.filter((r) => r.method === "POST").map((r) => r.status), [503, 201]);
  await page.close();
});

test("another agent's contact is refused (403) and nothing is offered", async () => {
  const { page, app, api } = await openWorkspace("c-3");
  await signIn(page, app, "agent-b");
  await app.locator("#message").filter({ hasText: "handled by another agent" }).waitFor();
  assert.ok(await app.locator("#caller").isHidden());
  assert.deepEqual(api.map((r) => `${r.method} ${r.status}`), ["GET 403"]);
  await page.close();
});

test("without a valid token the API answers 401 and the app asks to sign in again", async () => {
  const { page, app, api } = await openWorkspace("c-3");
  // A request that lost its token.
  await page.route("**/api/deny-list/flags/**", (route) => {
    const headers = { ...route.request().headers() };
    delete headers.authorization;
    return route.continue({ headers });
  });
  await signIn(page, app, "agent-a");
  await app.locator("#message").filter({ hasText: "sign in again" }).waitFor();
  await app.locator("#signin").waitFor();
  await page.unroute("**/api/deny-list/flags/**");
  // An expired token (the provider's clock says so, whatever `expires_in` claimed).
  idp.tokenLifetime = -600;
  try {
    await signIn(page, app, "agent-a");
    await app.locator("#signin").waitFor();
    assert.equal(api.at(-1).status, 401);
  } finally {
    idp.tokenLifetime = 3600;
  }
  // Signing in again works.
  await signIn(page, app, "agent-a");
  await app.locator("#listed").filter({ hasText: "not listed" }).waitFor();
  assert.deepEqual(api.map((r) => r.status), [401, 401, 200]);
  await page.close();
});

test("a chat is not offered for flagging", async () => {
  const { page, app } = await openWorkspace("c-chat", { channel: "chat" });
  await app.locator("#message").filter({ hasText: "Only voice calls" }).waitFor();
  assert.ok(await app.locator("#signin").isHidden());
  await page.close();
});

test("a page on an origin the CSP does not allow cannot frame the app", async () => {
  const page = await browser.newPage();
  const refusals = [];
  page.on("console", (m) => m.text().includes("frame-ancestors") && refusals.push(m.text()));
  const query = new URLSearchParams({ app: appUrl, contact: "c-1" });
  await page.goto(`http://127.0.0.1:${host.port}/host.html?${query}`);
  await page.waitForTimeout(1500);
  assert.ok(refusals.length > 0, "Chromium reports the frame-ancestors refusal");
  assert.deepEqual(await hostLog(page), [], "the framed app never ran");
  await page.close();
});

test("the deny list holds the flagged callers, added by the agent, and nothing else", async () => {
  server.child.kill();
  await server.exited;
  server = undefined;
  const out = spawnSync(bin, ["denylist", "list", "--format", "json", "--state-dir", state], {
    env: { ...process.env, CONNECT_EVENTS_LOCK_WAIT: "0" },
    encoding: "utf8",
  });
  assert.equal(out.status, 0, out.stderr);
  const entries = JSON.parse(out.stdout);
  assert.deepEqual(entries.map((e) => e.number).sort(), [CALLERS["c-1"], CALLERS["c-2"], CALLERS["c-4"]]);
  for (const entry of entries) {
    assert.equal(entry.addedBy, "agent-a");
    assert.equal(entry.source, "agent");
  }
  assert.equal(entries.find((e) => e.number === CALLERS["c-1"]).reason, "abusive caller");
  assert.match(serverLog, /agent app: caller flagged/);
  assert.deepEqual(numbersIn(serverLog), [], "numbers in the server's log");
});

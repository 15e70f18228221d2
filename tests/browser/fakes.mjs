// Servers the browser test starts on loopback: a fake OpenID provider (authorization code + PKCE,
// RS256 tokens shaped like Cognito's) and a static server for the fake workspace host page.
import { createHash, createSign, generateKeyPairSync, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";

const b64url = (buffer) => Buffer.from(buffer).toString("base64url");

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server.address().port));
  });
}

async function body(request) {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString());
}

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A fake OpenID provider for one client. The sign-in page asks for a username (no password); the
 * token endpoint checks the code, the redirect URI and the PKCE verifier. `tokenLifetime` (seconds,
 * may be negative) sets the `exp` of the next tokens; `expires_in` always says an hour, as a token
 * revoked or issued by a skewed clock would.
 */
export async function startIdp({ clientId }) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = "test-key";
  const jwks = { keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" }] };
  const codes = new Map();
  const idp = { jwks, tokenLifetime: 3600, issued: [], port: 0, issuer: "" };
  const sign = (claims) => {
    const head = b64url(JSON.stringify({ alg: "RS256", kid, typ: "JWT" }));
    const payload = b64url(JSON.stringify(claims));
    const signature = createSign("RSA-SHA256").update(`${head}.${payload}`).sign(privateKey);
    return `${head}.${payload}.${b64url(signature)}`;
  };
  const server = createServer(async (request, response) => {
    const url = new URL(request.url, idp.issuer);
    const send = (status, type, text, headers = {}) => {
      response.writeHead(status, { "content-type": type, "access-control-allow-origin": "*", ...headers });
      response.end(text);
    };
    const json = (status, value) => send(status, "application/json", JSON.stringify(value));
    if (request.method === "OPTIONS") {
      return send(204, "text/plain", "", {
        "access-control-allow-methods": "GET, POST",
        "access-control-allow-headers": "content-type, authorization",
      });
    }
    if (url.pathname === "/.well-known/openid-configuration") {
      return json(200, {
        issuer: idp.issuer,
        authorization_endpoint: `${idp.issuer}/authorize`,
        token_endpoint: `${idp.issuer}/token`,
        jwks_uri: `${idp.issuer}/jwks`,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        code_challenge_methods_supported: ["S256"],
        scopes_supported: ["openid"],
      });
    }
    if (url.pathname === "/jwks") return json(200, jwks);
    if (url.pathname === "/authorize" && request.method === "GET") {
      const q = url.searchParams;
      if (q.get("client_id") !== clientId || q.get("response_type") !== "code" || q.get("code_challenge_method") !== "S256") {
        return send(400, "text/plain", "bad authorization request");
      }
      const hidden = ["client_id", "redirect_uri", "state", "code_challenge", "nonce", "scope"]
        .map((name) => `<input type="hidden" name="${name}" value="${escape(q.get(name) ?? "")}">`)
        .join("");
      return send(200, "text/html", `<!doctype html><title>Sign in</title><form method="post" action="/authorize">${hidden}
        <label>Username <input id="username" name="username" autofocus></label>
        <button id="sign-in" type="submit">Sign in</button></form>`);
    }
    if (url.pathname === "/authorize" && request.method === "POST") {
      const form = await body(request);
      const code = b64url(randomBytes(16));
      codes.set(code, Object.fromEntries(form));
      const target = new URL(form.get("redirect_uri"));
      target.searchParams.set("code", code);
      target.searchParams.set("state", form.get("state"));
      response.writeHead(302, { location: target.href });
      return response.end();
    }
    if (url.pathname === "/token" && request.method === "POST") {
      const form = await body(request);
      const grant = codes.get(form.get("code"));
      codes.delete(form.get("code"));
      const challenge = b64url(createHash("sha256").update(form.get("code_verifier") ?? "").digest());
      if (
        form.get("grant_type") !== "authorization_code" ||
        !grant ||
        grant.client_id !== form.get("client_id") ||
        grant.redirect_uri !== form.get("redirect_uri") ||
        grant.code_challenge !== challenge
      ) {
        return json(400, { error: "invalid_grant" });
      }
      const now = Math.floor(Date.now() / 1000);
      const exp = now + idp.tokenLifetime;
      const sub = `sub-${grant.username}`;
      const access = sign({ iss: idp.issuer, sub, client_id: clientId, token_use: "access", scope: grant.scope, username: grant.username, iat: now, exp });
      const id = sign({ iss: idp.issuer, sub, aud: clientId, token_use: "id", "cognito:username": grant.username, nonce: grant.nonce || undefined, iat: now, exp: now + 3600 });
      idp.issued.push({ username: grant.username, exp });
      return json(200, { access_token: access, id_token: id, token_type: "Bearer", expires_in: 3600, scope: grant.scope });
    }
    return send(404, "text/plain", "not found");
  });
  idp.port = await listen(server);
  idp.issuer = `http://127.0.0.1:${idp.port}`;
  idp.close = () => new Promise((resolve) => server.close(resolve));
  return idp;
}

/** Serves the files of `dir` (the fake host page) to any host name it is reached by. */
export async function startStatic(dir) {
  const types = { html: "text/html", js: "text/javascript" };
  const server = createServer((request, response) => {
    const name = new URL(request.url, "http://x").pathname.slice(1);
    if (!/^[a-z]+\.(html|js)$/.test(name)) {
      response.writeHead(404).end();
      return;
    }
    try {
      const text = readFileSync(new URL(name, dir));
      response.writeHead(200, { "content-type": types[name.split(".")[1]] }).end(text);
    } catch {
      response.writeHead(404).end();
    }
  });
  const port = await listen(server);
  return { port, close: () => new Promise((resolve) => server.close(resolve)) };
}

// Sign-in with the instance's identity provider: OIDC authorization code + PKCE in a popup (identity
// providers refuse to be framed, and the workspace frames this app). Tokens stay in memory: no
// cookies, no localStorage, gone with the app instance (one per contact).
import { InMemoryWebStorage, User, UserManager, WebStorageStateStore } from "oidc-client-ts";

/** What the server tells the page (`config.json`, from the server's configuration). */
export interface AppSettings {
  /** The identity provider's issuer (its discovery document is `<issuer>/.well-known/openid-configuration`). */
  issuer: string;
  /** The app's OAuth client id at that provider. */
  clientId: string;
  /** Scopes asked for (at least `openid`). */
  scope: string;
}

export async function loadSettings(): Promise<AppSettings> {
  const response = await fetch(new URL("config.json", location.href), { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  const settings = (await response.json()) as Partial<AppSettings>;
  if (!settings.issuer || !settings.clientId) {
    throw new Error("config.json: the server has no identity provider configured");
  }
  return { issuer: settings.issuer, clientId: settings.clientId, scope: settings.scope || "openid" };
}

export function userManager(settings: AppSettings): UserManager {
  const memory = () => new WebStorageStateStore({ store: new InMemoryWebStorage() });
  return new UserManager({
    authority: settings.issuer,
    client_id: settings.clientId,
    scope: settings.scope,
    response_type: "code",
    redirect_uri: new URL("callback.html", location.href).href,
    userStore: memory(),
    stateStore: memory(),
    // A silent renew would frame the identity provider, which it refuses: an expired session
    // shows the sign-in button again instead.
    automaticSilentRenew: false,
    loadUserInfo: false,
  });
}

/** The bearer token the API takes: the access token (its `aud`/`client_id` is the app client). */
export function bearer(user: User | null): string | undefined {
  return user && !user.expired ? user.access_token : undefined;
}

// The agent-workspace app: one instance per contact (the workspace's per-contact scope). It learns
// the contact id from the workspace, signs the agent in with the instance's identity provider, shows
// whether the contact's caller is listed (masked number only) and flags the caller. The page never
// sees the caller's number: the server resolves it from the contact and checks that the signed-in
// agent is the contact's agent.
import { AmazonConnectApp, AppCreateEvent } from "@amazon-connect/app";
import { ContactClient } from "@amazon-connect/contact";
import type { User, UserManager } from "oidc-client-ts";
import { bearer, loadSettings, userManager } from "./auth";

/** `GET /api/deny-list/flags/{contactId}` and `POST /api/deny-list/flags` answers. */
interface FlagStatus {
  contactId: string;
  listed: boolean;
  /** Masked (`+14*******00`). */
  number: string;
  reason?: string | null;
  /** Epoch seconds; absent = until removed. */
  expiresAt?: number | null;
}

const byId = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`page without #${id}`);
  return element as T;
};
const ui = {
  contact: byId<HTMLParagraphElement>("contact"),
  message: byId<HTMLParagraphElement>("message"),
  signin: byId<HTMLButtonElement>("signin"),
  caller: byId<HTMLElement>("caller"),
  number: byId<HTMLElement>("number"),
  listed: byId<HTMLElement>("listed"),
  listing: byId<HTMLElement>("listing"),
  form: byId<HTMLFormElement>("flag"),
  reason: byId<HTMLInputElement>("reason"),
  ttl: byId<HTMLSelectElement>("ttl"),
  flag: byId<HTMLButtonElement>("flag-button"),
};

const REQUEST_TIMEOUT_MS = 15_000;

let contactId: string | undefined;
let manager: UserManager | undefined;
let user: User | null = null;
let flagging = false;
/** The workspace says the contact is not a voice call. */
let notVoice = false;

/** The sign-in button shows while the app can sign in and has a reason to. */
function offerSignin(): void {
  ui.signin.hidden = !(manager && contactId && !user && !notVoice);
}

function say(text: string, error = false): void {
  ui.message.textContent = text;
  ui.message.classList.toggle("error", error);
}

function signedOut(text: string): void {
  user = null;
  ui.caller.hidden = true;
  offerSignin();
  say(text, true);
}

async function api(method: "GET" | "POST", path: string, body?: object): Promise<{ status: number; body: Record<string, unknown> }> {
  const token = bearer(user);
  if (!token) return { status: 401, body: {} };
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body) headers["content-type"] = "application/json";
  // A hung request ends (the Lambda's own timeout is 10 s): the agent is told and may try again.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(new URL(`../api/deny-list/flags${path}`, location.href), {
      method,
      headers,
      body: body ? JSON.stringify(body) : undefined,
      cache: "no-store",
      credentials: "omit",
      signal: abort.signal,
    });
    const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    return { status: response.status, body: answer };
  } finally {
    clearTimeout(timer);
  }
}

function failed(status: number, body: Record<string, unknown>): void {
  switch (status) {
    case 401:
      return signedOut("Your session has ended: sign in again.");
    case 403:
      ui.caller.hidden = true;
      return say("This contact is handled by another agent: you cannot flag its caller.", true);
    case 404:
      return say("The contact was not found.", true);
    case 409:
      ui.caller.hidden = true;
      return say(typeof body.message === "string" ? `This caller cannot be flagged: ${body.message}.` : "This caller cannot be flagged.", true);
    case 429:
      return say("Too many requests: try again in a moment.", true);
    default:
      return say(`The deny list did not answer (HTTP ${status}): try again.`, true);
  }
}

function render(flag: FlagStatus): void {
  ui.caller.hidden = false;
  ui.number.textContent = flag.number;
  ui.listed.textContent = flag.listed ? "listed" : "not listed";
  ui.listed.classList.toggle("listed", flag.listed);
  const until = flag.expiresAt ? `until ${new Date(flag.expiresAt * 1000).toLocaleString()}` : "until removed";
  ui.listing.textContent = flag.listed ? `Blocked ${until}${flag.reason ? ` (${flag.reason})` : ""}.` : "";
  ui.form.hidden = flag.listed;
}

async function refresh(): Promise<void> {
  if (!contactId || !bearer(user)) return;
  try {
    const { status, body } = await api("GET", `/${encodeURIComponent(contactId)}`);
    if (status === 200) {
      say("");
      render(body as unknown as FlagStatus);
    } else {
      failed(status, body);
    }
  } catch {
    say("The deny list cannot be reached: try again.", true);
  }
}

ui.signin.addEventListener("click", () => {
  if (!manager) return;
  // Opens the popup synchronously (inside the click), then waits for the code exchange.
  manager
    .signinPopup()
    .then(async (signedIn) => {
      user = signedIn;
      offerSignin();
      say("");
      await refresh();
    })
    .catch((error: unknown) => say(`Sign-in did not complete: ${error instanceof Error ? error.message : String(error)}`, true));
});

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (flagging || !contactId) return; // a double click sends one request
  flagging = true;
  ui.flag.disabled = true;
  const reason = ui.reason.value.trim();
  api("POST", "", { contactId, reason: reason || undefined, ttl: ui.ttl.value || undefined })
    .then(({ status, body }) => {
      if (status === 200 || status === 201) {
        render(body as unknown as FlagStatus);
        say(status === 201 ? "Caller flagged: their next calls are blocked." : "This caller was already listed.");
      } else {
        failed(status, body);
      }
    })
    .catch(() => say("The deny list cannot be reached: try again.", true))
    .finally(() => {
      flagging = false;
      ui.flag.disabled = false;
    });
});

async function checkChannel(id: string): Promise<void> {
  // A hint only (the server decides): a chat or task needs no sign-in to learn it cannot be flagged.
  try {
    const channel = await new ContactClient().getChannelType(id);
    if (channel.type !== "voice") {
      notVoice = true;
      offerSignin();
      say("Only voice calls can be flagged.");
    }
  } catch {
    // The workspace did not answer: the server will tell.
  }
}

AmazonConnectApp.init({
  onCreate: async (event: AppCreateEvent) => {
    const scope = event.context.scope ?? event.context.contactScope;
    contactId = scope && scope.type === "contact" ? scope.contactId : undefined;
    if (!contactId) {
      ui.contact.textContent = "No contact: this app works on a contact.";
      return;
    }
    ui.contact.textContent = `Contact ${contactId}`;
    offerSignin();
    void checkChannel(contactId);
  },
  onDestroy: async () => {
    user = null; // the contact has ended: forget the agent's token with it
  },
});

loadSettings()
  .then((settings) => {
    manager = userManager(settings);
    offerSignin();
  })
  .catch((error: unknown) => say(`The app is not configured: ${error instanceof Error ? error.message : String(error)}`, true));

// The sign-in popup's landing page: hands the authorization response to the app that opened the
// popup (same origin), which exchanges the code; this page keeps nothing.
import { loadSettings, userManager } from "./auth";

loadSettings()
  .then((settings) => userManager(settings).signinPopupCallback())
  .catch((error: unknown) => {
    document.body.textContent = `Sign-in failed: ${error instanceof Error ? error.message : String(error)}`;
  });

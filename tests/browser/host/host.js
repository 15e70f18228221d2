// A fake Amazon Connect agent workspace: frames the app the way AppManager does (the template's
// iframe sandbox) and speaks the host side of the SDK's protocol (@amazon-connect/app 1.0.11):
// takes the MessagePort of `connect-app-host-init`, acknowledges, runs the lifecycle with a contact
// scope, answers requests and health checks. Every app -> host message is kept in `window.hostLog`.
// Query: app=<app URL>, contact=<contact id>, channel=voice|chat.
const params = new URLSearchParams(location.search);
const appUrl = params.get("app");
const contactId = params.get("contact");
const channel = params.get("channel") || "voice";
window.hostLog = [];

const frame = document.createElement("iframe");
frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-popups allow-forms");
frame.src = appUrl;
frame.width = "420";
frame.height = "340";
frame.style.border = "1px solid #ccc";
document.body.append(frame);

const scope = { type: "contact", contactId };
const lifecycle = (stage) => ({
  type: "appLifecycle",
  stage,
  instanceId: "app-instance-1",
  appInstanceId: "app-instance-1",
  config: {},
  appConfig: {},
  scope,
  contactScope: scope,
  region: "us-east-1",
  launchedBy: { type: "internal" },
});
let port;
let counter = 0;

window.addEventListener("message", (event) => {
  if (event.source !== frame.contentWindow || event.origin !== new URL(appUrl).origin) return;
  if (!event.data || event.data.type !== "connect-app-host-init" || !event.ports[0]) return;
  window.hostLog.push(event.data);
  port = event.ports[0];
  port.onmessage = ({ data }) => {
    window.hostLog.push(data);
    if (data.type === "appLifecycleHandlerCompleted" && data.stage === "create") {
      port.postMessage(lifecycle("start"));
    } else if (data.type === "healthCheck") {
      port.postMessage({ type: "healthCheckResponse", time: Date.now(), counter: ++counter });
    } else if (data.type === "request") {
      const base = { type: "response", namespace: data.namespace, requestId: data.requestId };
      if (data.namespace === "aws.connect.contact" && data.command === "contact/getChannelType") {
        const subtype = channel === "voice" ? "connect:Telephony" : "connect:Chat";
        port.postMessage({ ...base, isError: false, data: { type: channel, subtype } });
      } else {
        port.postMessage({
          ...base,
          isError: true,
          errorKey: "handlerNotFound",
          reason: "No handler for command",
          details: { command: data.command, requestData: data.data },
        });
      }
    }
  };
  port.postMessage({
    type: "acknowledge",
    connectionId: "connection-1",
    status: { initialized: true, startTime: new Date() },
    healthCheckInterval: 0,
  });
  port.postMessage(lifecycle("create"));
});

/** The contact ends: the workspace destroys the app instance. */
window.hostDestroy = () => port && port.postMessage(lifecycle("destroy"));

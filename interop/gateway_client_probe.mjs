// Drive the reference client package (@openclaw/gateway-client) against a gateway.
//
//   node gateway_client_probe.mjs <packageDir> <url> <token> <mode>
//
// mode "token":  the default gateway-client/backend identity with the shared token;
// mode "device": a fresh Ed25519 device identity (signed connect), then a second connect
//                that signs in with the device token from hello-ok instead of the token.
// Prints one JSON object per line ({step, ...}); exits 1 on the first failure.
import crypto from "node:crypto";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [packageDir, url, token, mode] = process.argv.slice(2);
const { GatewayClient } = await import(
  pathToFileURL(path.join(packageDir, "node_modules/@openclaw/gateway-client/dist/index.mjs")).href
);

const print = (step, value) => console.log(JSON.stringify({ step, ...value }));
const fail = (step, error) => {
  print(step, { error: String(error?.message ?? error), details: error?.details ?? null });
  process.exit(1);
};

function makeIdentity() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519");
  const publicKeyPem = publicKey.export({ type: "spki", format: "pem" });
  const raw = publicKey.export({ type: "spki", format: "der" }).subarray(12);
  return {
    deviceId: crypto.createHash("sha256").update(raw).digest("hex"),
    publicKeyPem,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }),
  };
}

const tokens = new Map();
const hostDeps = {
  signDevicePayload: (pem, payload) =>
    crypto.sign(null, Buffer.from(payload, "utf8"), crypto.createPrivateKey(pem)).toString("base64url"),
  publicKeyRawBase64UrlFromPem: (pem) =>
    crypto.createPublicKey(pem).export({ type: "spki", format: "der" }).subarray(12).toString("base64url"),
  loadDeviceAuthToken: ({ deviceId, role }) => tokens.get(`${deviceId}/${role}`) ?? null,
  storeDeviceAuthToken: ({ deviceId, role, token: value, scopes }) =>
    tokens.set(`${deviceId}/${role}`, { token: value, scopes }),
  clearDeviceAuthToken: ({ deviceId, role }) => tokens.delete(`${deviceId}/${role}`),
};

async function session(step, options, calls) {
  const ready = Promise.withResolvers();
  const client = new GatewayClient({
    url,
    requestTimeoutMs: 10_000,
    onHelloOk: (hello) => ready.resolve(hello),
    onConnectError: (error) => ready.reject(error),
    ...options,
  });
  client.start();
  let hello;
  try {
    hello = await ready.promise;
  } catch (error) {
    client.stop();
    fail(step, error);
  }
  print(step, { hello });
  for (const [method, params] of calls) {
    try {
      print(`${step}:${method}`, { payload: await client.request(method, params) });
    } catch (error) {
      client.stop();
      fail(`${step}:${method}`, error);
    }
  }
  client.stop();
  return hello;
}

if (mode === "token") {
  await session("connect", { token }, [
    ["health", {}],
    ["status", {}],
    ["system-presence", {}],
  ]);
} else if (mode === "device") {
  const deviceIdentity = makeIdentity();
  print("identity", { deviceId: deviceIdentity.deviceId });
  const common = {
    deviceIdentity,
    hostDeps,
    clientName: "test",
    mode: "test",
    role: "operator",
    scopes: ["operator.read", "operator.write"],
  };
  const first = await session("signed", { ...common, token }, [["node.list", {}]]);
  const deviceToken = first?.auth?.deviceToken;
  if (!deviceToken) fail("signed", "hello-ok carried no auth.deviceToken");
  await session("device-token", { ...common, deviceToken }, [["health", {}]]);
} else {
  fail("args", `unknown mode ${mode}`);
}
process.exit(0);

// Where the credential lives (CONTROL-UI.md 2): a token in sessionStorage, keyed by the
// gateway's WebSocket URL (gone when the tab closes; never in localStorage); a password only
// in memory. (A token passed in the fragment is taken by app.js before anything else runs.)

const PREFIX = "sa.token:";
const INSTANCE = "sa.instanceId";

let password = null;

export function loadCredential(url) {
  if (password) return { password };
  const token = sessionStorage.getItem(PREFIX + url);
  return token ? { token } : null;
}

export function saveCredential(url, credential) {
  password = null;
  if (credential.password) {
    password = credential.password;
    sessionStorage.removeItem(PREFIX + url);
  } else if (credential.token) {
    sessionStorage.setItem(PREFIX + url, credential.token);
  } else {
    sessionStorage.removeItem(PREFIX + url);
  }
}

export function forget(url) {
  password = null;
  sessionStorage.removeItem(PREFIX + url);
}

export function instanceId(make) {
  let id = sessionStorage.getItem(INSTANCE);
  if (!id) {
    id = make();
    sessionStorage.setItem(INSTANCE, id);
  }
  return id;
}

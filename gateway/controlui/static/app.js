// Entry point. It runs before any other script is fetched: a token passed once in the
// fragment (#token=...) is taken and removed from the address bar first, so it is in no
// history entry, no screenshot of the URL and no later request (CONTROL-UI.md 2).

function takeFragment() {
  const hash = location.hash.replace(/^#/, "");
  if (!hash.includes("=")) return null;
  const params = new URLSearchParams(hash);
  const token = params.get("token");
  if (!params.has("token") && !params.has("password")) return null;
  params.delete("token");
  params.delete("password"); // a password in a URL is never used
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  return token && token.trim() ? token.trim() : null;
}

const fragmentToken = takeFragment();
const { start } = await import("./main.js");
start(fragmentToken);

// The sign-in card: always reachable, says which config key holds the secret and how to find
// it, and shows the gateway's own error text and code when a credential is refused.

import { h } from "../lib/dom.js";

export function createLogin(app) {
  let mode = "token";
  const tokenInput = h("input", {
    id: "login-secret",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "paste the gateway token",
    testid: "token-input",
  });
  const label = h("label", { for: "login-secret", class: "login-label" });
  const keyHint = h("ul", { class: "hint", testid: "login-hint" });
  const error = h("div", { class: "login-error", testid: "login-error", role: "alert", hidden: true });
  const tokenTab = h("button", { type: "button", class: "seg-item active", text: "Token", testid: "mode-token" });
  const passwordTab = h("button", { type: "button", class: "seg-item", text: "Password", testid: "mode-password" });

  function setMode(next) {
    mode = next;
    tokenTab.classList.toggle("active", mode === "token");
    passwordTab.classList.toggle("active", mode === "password");
    tokenInput.placeholder = mode === "token" ? "paste the gateway token" : "the gateway password";
    label.replaceChildren(
      mode === "token" ? "Gateway token " : "Gateway password ",
      h("code", { text: mode === "token" ? "gateway.auth.token" : "gateway.auth.password" }),
    );
    keyHint.replaceChildren(
      h("li", {}, "On the gateway host, ", h("code", { text: "smart-agent-neo dashboard --token-link" }), " prints a link that signs you in."),
      h("li", {}, "Or read it with ", h("code", { text: `smart-agent-neo config get gateway.auth.${mode}` }), mode === "token" ? " (a generated token is in ~/.smart-agent-neo/gateway.token)." : "."),
      h("li", { text: mode === "token" ? "SMART_AGENT_NEO_GATEWAY_TOKEN overrides the config. Auth mode \"none\": leave this empty." : "SMART_AGENT_NEO_GATEWAY_PASSWORD overrides the config. A password is kept in memory only." }),
    );
  }
  tokenTab.addEventListener("click", () => setMode("token"));
  passwordTab.addEventListener("click", () => setMode("password"));
  setMode("token");

  const form = h(
    "form",
    { class: "login-form", testid: "login-form", autocomplete: "off" },
    h("div", { class: "seg", role: "group", "aria-label": "Secret kind" }, tokenTab, passwordTab),
    label,
    tokenInput,
    keyHint,
    error,
    h("button", { type: "submit", class: "primary", testid: "connect-button", text: "Connect" }),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const secret = tokenInput.value.trim();
    error.hidden = true;
    app.signIn(mode === "token" ? { token: secret } : { password: secret });
  });

  const el = h(
    "section",
    { class: "login", testid: "login", hidden: true, "aria-label": "Sign in" },
    h(
      "div",
      { class: "login-card" },
      h("h1", { text: "Connect to your gateway" }),
      h("p", { class: "muted mono small", text: app.url }),
      form,
      h("p", {
        class: "muted small",
        text: "The secret stays in this tab (a token in session storage, a password in memory) and is only sent inside the WebSocket connection to this address.",
      }),
    ),
  );

  return {
    el,
    show(failure) {
      el.hidden = false;
      document.body.classList.add("signed-out");
      if (failure) {
        const code = failure.detailCode || failure.code;
        error.replaceChildren(
          h("strong", { text: failure.message }),
          h("span", { class: "code", text: code ? ` (${code})` : "" }),
        );
        error.hidden = false;
        if (code && code.startsWith("AUTH_PASSWORD")) setMode("password");
      } else {
        error.hidden = true;
      }
      tokenInput.focus();
    },
    hide() {
      el.hidden = true;
      document.body.classList.remove("signed-out");
    },
  };
}

"""The Control UI: a static single-page app served on the gateway port (CONTROL-UI.md 1-6).

routing.py   which answer a request gets (redirect, file, SPA fallback, 400/404/405) (pure)
assets.py    the files, read once and kept in memory; index.html with the base path injected
handler.py   the HTTP handler: security headers, ETag/304, HEAD, the 503 when files are missing
static/      the app itself: vanilla ES modules, one CSS file, no build step
"""
